"""The multi-node path, on one machine: a Ray cluster of several nodes (``ray.cluster_utils.Cluster``, Ray's
own multi-node test tool: each node is a separate raylet with its own CPUs), the real app connected to it
by address, real job drivers.

* ``second-node``: the head node has 0 CPUs, a worker node has 2. A job's trainings must run on the worker;
  the Ray state API (through the dashboard the head runs) shows every Tune trial actor on that node, and the
  API's dashboard URL answers.
* ``kill-node``: the head has 0 CPUs, two worker nodes have 1 CPU each. Once both hold a training (no CPU
  free in the cluster), one worker node is killed; Tune retries the lost trial on the surviving node and
  the job still succeeds.

The scenarios cannot share the test session's Ray (``ray_session``: one ``ray.init`` per process), so each
runs in a subprocess of its own: ``python -m tests.api.test_multinode SCENARIO WORKDIR`` writes
``WORKDIR/report.json``, which the tests check. Run a scenario by hand the same way to watch it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TASKS = ["a1", "a2", "b1", "b2"]
SPEC = {
    "dataset": {"name": "planted", "params": {"evaluation_samples": 1024}},
    "tasks": TASKS,
    "training": {"epochs": 12},
}
SLOWER = {"dataset": {"name": "planted"}, "tasks": TASKS, "training": {"epochs": 20}}
NODE_MEMORY = 80 * 1024**2  # object store per node: the trainings pass no large objects
LOOPBACK = "127.0.0.1"  # every node's address: test traffic stays on this machine's loopback


def run_scenario(name: str, workdir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        TUNE_DISABLE_AUTO_INIT="1",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # the nodes keep 127.0.0.1 (see tests/conftest.py)
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.api.test_multinode", name, str(workdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report_path = workdir / "report.json"
    assert result.returncode == 0 and report_path.exists(), result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(report_path.read_text())


def test_trainings_run_on_the_second_node(tmp_path: Path) -> None:
    report = run_scenario("second-node", tmp_path)
    assert report["job"]["state"] == "succeeded"
    assert report["job"]["progress"]["done"] == 19
    assert report["head_cpus"] == 0 and report["worker_cpus"] == 2
    trial_nodes = report["trial_actor_nodes"]
    assert trial_nodes, "the state API shows no Tune trial actor"
    assert set(trial_nodes) == {report["worker_node"]}  # every training ran on the second node
    assert report["dashboard_status"] == 200 and report["dashboard_url"].startswith("http")
    assert report["served_at_2"] == [["a1", "a2"], ["b1", "b2"]]


def test_a_job_finishes_when_a_worker_node_is_killed(tmp_path: Path) -> None:
    report = run_scenario("kill-node", tmp_path)
    assert report["cpus_free_when_killed"] == 0  # both worker nodes were training when one was killed
    assert report["killed_node_alive_after"] is False
    assert report["nodes_alive_after"] == 2  # the head and the surviving worker
    job = report["job"]
    assert job["state"] == "succeeded", job["error"]
    assert job["progress"]["done"] == 19 and job["progress"]["failed"] == 0
    assert report["done_when_killed"] < 19
    assert max(report["attempts"]) >= 2  # the training lost with the node ran again on the other one
    assert report["served_at_2"] == [["a1", "a2"], ["b1", "b2"]]


# ---------------------------------------------------------------------- the scenarios (run in a subprocess)


def _wait(client: Any, job_id: str, predicate: Any, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if predicate(job) or job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id}: {job['state']} {job['progress']}")
        time.sleep(0.2)


def _served(client: Any, job_id: str) -> list[list[str]]:
    record = client.get(f"/jobs/{job_id}/grouping", params={"budget": 2}).json()
    return sorted(sorted(n["serves"]) for n in record.get("networks", []) if n["serves"])


def _settings(workdir: Path, address: str) -> Any:
    from api.settings import Settings

    return Settings(
        database_url=f"sqlite:///{workdir / 'service.db'}",
        data_dir=workdir / "data",
        runs_dir=workdir / "runs",
        ray_address=address,
        shutdown_grace_seconds=30,
    )


def _cluster(dashboard: bool, worker_cpus: list[int]) -> tuple[Any, list[Any]]:
    """A head with no CPU (and its dashboard if asked) and one worker node per entry of ``worker_cpus``,
    every node on loopback."""
    from ray.cluster_utils import Cluster

    node = {"object_store_memory": NODE_MEMORY, "node_ip_address": LOOPBACK}
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": dashboard, **node}
    )
    workers = [cluster.add_node(num_cpus=cpus, **node) for cpus in worker_cpus]
    cluster.wait_for_nodes()
    return cluster, workers


def scenario_second_node(workdir: Path) -> dict[str, Any]:
    import urllib.request

    import ray
    from fastapi.testclient import TestClient
    from ray.util.state import list_actors

    from api.app import create_app

    cluster, (worker,) = _cluster(dashboard=True, worker_cpus=[2])
    try:
        with TestClient(create_app(_settings(workdir, cluster.address))) as client:
            job_id = client.post("/jobs", json=SPEC).json()["id"]
            job = _wait(client, job_id, lambda j: j["state"] == "succeeded")
            nodes = {n["NodeID"]: n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]}
            actors = list_actors(filters=[("class_name", "=", "ImplicitFunc")], detail=True, limit=1000)
            dashboard = job["dashboard_url"]
            with urllib.request.urlopen(dashboard, timeout=10) as response:
                status = response.status
            return {
                "job": job,
                "head_cpus": nodes[cluster.head_node.node_id],
                "worker_cpus": nodes[worker.node_id],
                "worker_node": worker.node_id,
                "trial_actor_nodes": sorted({a.node_id for a in actors}),
                "dashboard_url": dashboard,
                "dashboard_status": status,
                "served_at_2": _served(client, job_id),
            }
    finally:
        ray.shutdown()
        cluster.shutdown()


def scenario_kill_node(workdir: Path) -> dict[str, Any]:
    import ray
    from fastapi.testclient import TestClient

    from api.app import create_app

    cluster, (_, doomed) = _cluster(dashboard=False, worker_cpus=[1, 1])
    try:
        with TestClient(create_app(_settings(workdir, cluster.address))) as client:
            job_id = client.post("/jobs", json=SLOWER).json()["id"]
            deadline = time.monotonic() + 300
            while True:  # both 1-CPU workers hold a trial: no CPU is free in the cluster
                busy = client.get(f"/jobs/{job_id}").json()
                free = ray.available_resources().get("CPU", 0.0)
                if busy["state"] == "running" and busy["progress"]["done"] >= 2 and free == 0:
                    break
                if busy["state"] not in ("queued", "running") or time.monotonic() > deadline:
                    raise RuntimeError(f"job {job_id} never had both nodes busy: {busy['state']}")
                time.sleep(0.1)
            cluster.remove_node(doomed, allow_graceful=False)
            job = _wait(client, job_id, lambda j: j["state"] == "succeeded")
            doomed_alive = True
            deadline = time.monotonic() + 120
            while doomed_alive and time.monotonic() < deadline:  # the GCS notices the dead node
                doomed_alive = any(n["Alive"] for n in ray.nodes() if n["NodeID"] == doomed.node_id)
                time.sleep(0.5)
            trainings = client.get(f"/jobs/{job_id}/trainings").json()["items"]
            return {
                "job": job,
                "cpus_free_when_killed": free,
                "done_when_killed": busy["progress"]["done"],
                "killed_node_alive_after": doomed_alive,
                "nodes_alive_after": sum(1 for n in ray.nodes() if n["Alive"]),
                "attempts": sorted(t["attempts"] for t in trainings),
                "served_at_2": _served(client, job_id),
            }
    finally:
        ray.shutdown()
        cluster.shutdown()


SCENARIOS = {"second-node": scenario_second_node, "kill-node": scenario_kill_node}


def main(argv: list[str]) -> int:
    name, workdir = argv[0], Path(argv[1])
    workdir.mkdir(parents=True, exist_ok=True)
    report = SCENARIOS[name](workdir)
    (workdir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
