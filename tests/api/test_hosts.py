"""Real hosts on one machine (issue 14): a Ray head and two Ray worker hosts in network namespaces of their
own (tests/api/hosts.py: own addresses, veth links to a bridge), the service started with ``taskgroup serve
--address <head>`` on the head with a PostgreSQL store of its own, a job submitted over HTTP, and every
process of one worker host SIGKILLed while both hosts train. The job must finish with nothing lost (every
planned training succeeded, the planted grouping found) and no training done twice (a training that had
succeeded before the kill is untouched; only the one in flight on the dead host runs again).

This is the executable version of docs/deployment.md's "Real machines". It needs root, ``ip`` (iproute2)
and PostgreSQL; it skips saying which is missing. About 1-3 minutes on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.hosts import Hosts, HostsUnavailable, RayNodes, free_port, unavailable_reason
from tests.conftest import _psycopg_dsn, fresh_pg_database

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TASKS = ["a1", "a2", "b1", "b2"]
SPEC = {"dataset": {"name": "planted"}, "tasks": TASKS, "training": {"epochs": 20}}
PLANNED = 15 + 4  # every subset at full size and the half-size singles
TASKGROUP = Path(sys.executable).with_name("taskgroup")
JOB_SECONDS = 300


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    made = Hosts()
    try:
        yield made.create()
    except HostsUnavailable as exc:
        pytest.skip(str(exc))
    finally:
        made.destroy()


@pytest.fixture
def netns_database() -> Iterator[str]:
    """A fresh PostgreSQL database ``taskgroup_netns_<pid>`` (its store URL), dropped afterwards."""
    with fresh_pg_database(f"taskgroup_netns_{os.getpid()}") as url:
        yield url


@pytest.fixture
def cluster(hosts: Hosts, tmp_path: Path) -> Iterator[RayNodes]:
    """The head in the root namespace and a worker in each host namespace, with Ray's token auth on."""
    root = Path(f"/tmp/tgns{hosts.tag}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0")
    (tmp_path / "logs").mkdir()
    nodes = RayNodes(hosts=hosts, root=root, env=env, logs=tmp_path / "logs")
    try:
        nodes.start_head()
        _wait_for_port(hosts, nodes, 60)
        for i in (1, 2):
            nodes.start_worker(i)
        yield nodes
    finally:
        nodes.stop()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_port(hosts: Hosts, nodes: RayNodes, seconds: float) -> None:
    """Until the head's GCS accepts connections from inside every worker namespace."""
    probe = f"import socket; socket.create_connection(('{hosts.head_ip}', {nodes.gcs_port}), 2)"
    deadline = time.monotonic() + seconds
    while True:
        try:
            for i in (1, 2):
                hosts.exec(i, [sys.executable, "-c", probe])
            return
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the head never answered the worker hosts: {exc}\n{nodes.log_tails()}"
                ) from None
            time.sleep(1)


@pytest.fixture
def service(cluster: RayNodes, netns_database: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """``taskgroup serve --address <head>`` on the head with the PostgreSQL store and an API token."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(cluster.env)
    env.update(
        TASKGROUP_API_TOKEN=token,
        TASKGROUP_RUNS_DIR=str(tmp_path / "runs"),  # shared by every "host": one file system here
        TASKGROUP_DATA_DIR=str(tmp_path / "data"),
        TASKGROUP_SHUTDOWN_GRACE_SECONDS="10",
        TASKGROUP_DASHBOARD_URL=cluster.dashboard_url,
    )
    command = [str(TASKGROUP), "serve", "--port", str(port), "--address", cluster.address]
    command += ["--db", netns_database]
    log = (cluster.logs / "service.log").open("ab")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    try:
        _wait_healthy(client, process, cluster, 120)
        yield client
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(
    client: httpx.Client, process: subprocess.Popen[bytes], nodes: RayNodes, seconds: float
) -> None:
    """Until /healthz says ok and Ray shows the head and both workers alive."""
    deadline, health = time.monotonic() + seconds, None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            health = client.get("/healthz").json()
        except httpx.HTTPError:
            health = None
        if health and health.get("status") == "ok" and _cpus(health) >= 2:
            return
        time.sleep(1)
    raise AssertionError(
        f"the service never became healthy with 2 worker CPUs: {health}\n{nodes.log_tails()}"
    )


def _cpus(health: dict[str, Any]) -> float:
    info = (health.get("ray") or {}).get("info") or {}
    return float((info.get("resources") or {}).get("CPU", 0.0))


def _store_trainings(url: str) -> dict[str, dict[str, Any]]:
    """Straight from the store's trainings table: key -> state, attempts, finished_at."""
    import psycopg

    with psycopg.connect(_psycopg_dsn(url)) as conn:
        rows = conn.execute("SELECT key, state, attempts, finished_at FROM trainings").fetchall()
    return {
        key: {"state": state, "attempts": attempts, "finished": finished}
        for key, state, attempts, finished in rows
    }


def _wait_both_training(client: httpx.Client, job_id: str, nodes: RayNodes) -> dict[str, Any]:
    """Until both worker hosts hold a training (two running) and some trainings have finished."""
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        listing = client.get(f"/jobs/{job_id}/trainings").json()
        counts = listing.get("counts", {})
        if counts.get("running", 0) >= 2 and counts.get("succeeded", 0) >= 2:
            return listing
        job = client.get(f"/jobs/{job_id}").json()
        assert job["state"] in ("queued", "running"), f"job ended early: {job}\n{nodes.log_tails()}"
        time.sleep(0.2)
    raise AssertionError(f"the two worker hosts never trained at once\n{nodes.log_tails()}")


def _wait_final(client: httpx.Client, job_id: str, nodes: RayNodes) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {JOB_SECONDS} s\n{nodes.log_tails()}")


def _trial_node_ips(runs: Path) -> dict[str, set[str]]:
    """Tune's trial folders (named by network) -> the node addresses their results came from."""
    where: dict[str, set[str]] = {}
    for result in runs.rglob("result.json"):
        for line in result.read_text().splitlines():
            if line.strip():
                where.setdefault(result.parent.name, set()).add(json.loads(line).get("node_ip", "?"))
    return where


def test_a_job_survives_a_killed_worker_host(
    service: httpx.Client, cluster: RayNodes, hosts: Hosts, netns_database: str, tmp_path: Path
) -> None:
    submitted = service.post("/jobs", json=SPEC)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    _wait_both_training(service, job_id, cluster)
    before = _store_trainings(netns_database)
    killed = hosts.kill_host(1)
    assert killed, "worker host 1 had no process to kill"
    done_before = {k: r for k, r in before.items() if r["state"] == "succeeded"}
    running_before = {k for k, r in before.items() if r["state"] == "running"}

    job = _wait_final(service, job_id, cluster)
    assert job["state"] == "succeeded", f"{job}\n{cluster.log_tails()}"
    assert hosts.pids(1) == [], "worker host 1 came back to life"
    after = _store_trainings(netns_database)

    # Nothing lost: every planned training succeeded, once, and the job found the planted grouping.
    assert len(after) == PLANNED and all(r["state"] == "succeeded" for r in after.values()), after
    assert job["progress"]["done"] == PLANNED and job["progress"]["failed"] == 0
    record = service.get(f"/jobs/{job_id}/grouping", params={"budget": 2}).json()
    assert sorted(sorted(n["serves"]) for n in record["networks"] if n["serves"]) == [
        ["a1", "a2"],
        ["b1", "b2"],
    ]
    # No training done twice: what had succeeded before the kill is untouched; only trainings in flight at
    # the kill ran again (one per host at most: one CPU each).
    assert {k: after[k] for k in done_before} == done_before
    again = {k for k, r in after.items() if r["attempts"] > 1}
    assert again <= running_before and len(again) <= 1, (again, running_before)
    assert all(after[k]["attempts"] == 1 for k in running_before - again)  # the survivor's was not lost
    # The trainings ran on the worker hosts, both of them, never on the head (0 CPUs); Tune's trial folders
    # are named by network.
    where = _trial_node_ips(tmp_path / "runs")
    assert set().union(*where.values()) == {hosts.worker_ip(1), hosts.worker_ip(2)}, where
    assert any(folder.startswith("a1_a2_fidelity_1_seed_0_") for folder in where), sorted(where)
