"""End to end: the real app (TestClient), the real job manager and driver processes, the session's local Ray.

Each test submits ``planted`` jobs (synthetic tasks drawn from latent groups, so the best grouping is known:
``PlantedDataset.planted_groups()``), with sizes small enough that a job trains in seconds, and follows them
through the HTTP API only. The drivers are separate processes that join the test session's Ray (the
``ray_session`` fixture, 2 CPUs) by its GCS address, exactly as under ``taskgroup serve``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from search.store import TrainingState, open_store
from workers.datasets import get_dataset

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TASKS = ["a1", "a2", "b1", "b2"]
# 19 trainings of about 0.4 s each: the exhaustive search finds the planted groups at 2 SNT.
QUICK = {
    "dataset": {"name": "planted", "params": {"evaluation_samples": 1024}},
    "tasks": TASKS,
    "training": {"epochs": 12},
}
# The dataset's defaults and 20 epochs: about 1.2 s per training, long enough to interrupt a job mid-way.
LONGER = {"dataset": {"name": "planted"}, "tasks": TASKS, "training": {"epochs": 20}}
FINAL = {"succeeded", "failed", "cancelled"}


def planted_groups(spec: dict[str, Any]) -> set[frozenset[str]]:
    dataset = get_dataset(spec["dataset"]["name"], spec["dataset"].get("params"))
    return {frozenset(group) for group in dataset.planted_groups()}  # type: ignore[attr-defined]


@contextmanager
def service(tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    """The app on a store and runs folder under ``tmp_path`` (the same ones across restarts)."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'service.db'}",
        data_dir=tmp_path / "data",
        runs_dir=tmp_path / "runs",
        dashboard=False,
        shutdown_grace_seconds=60,
        **overrides,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def wait_for(
    client: TestClient,
    job_id: str,
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float = 180.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}", headers=headers).json()
        if predicate(job):
            return job
        if job["state"] in FINAL or time.monotonic() > deadline:
            raise AssertionError(
                f"job {job_id} did not get there: {job['state']} {job['progress']} {job['error']}"
            )
        time.sleep(0.25)


def served_groups(record: dict[str, Any]) -> set[frozenset[str]]:
    return {frozenset(network["serves"]) for network in record["networks"] if network["serves"]}


def test_planted_job_queue_reuse_and_download_with_auth(tmp_path: Path, ray_session: None) -> None:
    token = {"Authorization": "Bearer e2e-token"}
    with service(tmp_path, api_token="e2e-token", max_concurrent_jobs=1) as client:
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["ray"]["info"]["nodes"] >= 1
        assert client.post("/jobs", json=QUICK).status_code == 401
        first = client.post("/jobs", json=QUICK, headers=token).json()["id"]
        second = client.post("/jobs", json=QUICK, headers=token).json()["id"]

        wait_for(client, first, lambda j: j["state"] == "running", headers=token)
        waiting = client.get(f"/jobs/{second}", headers=token).json()
        assert waiting["state"] == "queued" and waiting["queue_position"] == 1  # one job at a time

        done = wait_for(client, first, lambda j: j["state"] == "succeeded", headers=token)
        assert done["progress"]["done"] == done["progress"]["total"] == 19
        assert done["progress"]["failed"] == 0 and done["finished_at"] is not None

        trainings = client.get(f"/jobs/{first}/trainings", headers=token).json()
        assert trainings["counts"]["succeeded"] == 19 and trainings["total"] == 19
        assert all(set(t["selection"]) == set(t["tasks"]) for t in trainings["items"])

        result = client.get(f"/jobs/{first}/result", headers=token).json()
        assert result["job_id"] == first and result["tasks"] == TASKS
        assert [r["budget"] for r in result["curve"]] == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]

        assert client.get(f"/jobs/{first}/grouping", params={"budget": 2}).status_code == 401
        download = client.get(f"/jobs/{first}/grouping", params={"budget": 2}, headers=token)
        assert download.status_code == 200
        assert download.headers["content-disposition"].startswith("attachment; filename=")
        grouping = download.json()
        assert grouping["budget"] == 2.0 and grouping["cost"] <= 2.0
        assert served_groups(grouping) == planted_groups(QUICK)  # the planted grouping, found by search

        again = wait_for(client, second, lambda j: j["state"] == "succeeded", headers=token)
        assert again["progress"]["reused"] == 19 and again["progress"]["trained"] == 0  # nothing retrained
        reused = client.get(f"/jobs/{second}/trainings", headers=token).json()
        assert all(t["reused"] for t in reused["items"])
        same = client.get(f"/jobs/{second}/grouping", params={"budget": 2}, headers=token).json()
        assert same == grouping


def test_restart_mid_job_resumes_without_retraining(tmp_path: Path, ray_session: None) -> None:
    with service(tmp_path) as client:
        job_id = client.post("/jobs", json=LONGER).json()["id"]
        wait_for(client, job_id, lambda j: j["state"] == "running" and j["progress"]["done"] >= 3)
    # The first service stopped its driver (SIGTERM): the job waits, queued, with what it trained so far.
    store = open_store(f"sqlite:///{tmp_path / 'service.db'}")
    try:
        assert store.get_job(job_id).state == "queued"
        before = {
            jt.training.key: jt.training
            for jt in store.job_trainings(job_id)
            if jt.training.state == TrainingState.SUCCEEDED
        }
    finally:
        store.close()
    assert 3 <= len(before) < 19, "the restart should happen mid-job"
    restarted = time.time()

    with service(tmp_path) as client:
        done = wait_for(client, job_id, lambda j: j["state"] == "succeeded")
        assert done["progress"]["done"] == 19
        items = {t["key"]: t for t in client.get(f"/jobs/{job_id}/trainings").json()["items"]}
        for key, old in before.items():  # trained before the restart: kept, not trained again
            assert items[key]["attempts"] == old.attempts == 1
            assert items[key]["finished_at"] == old.finished_at.isoformat().replace("+00:00", "Z")
        later = [t for t in items.values() if t["finished_at"] and _epoch(t["finished_at"]) > restarted]
        assert later, "some trainings ran after the restart"
        grouping = client.get(f"/jobs/{job_id}/grouping", params={"budget": 2}).json()
        assert served_groups(grouping) == planted_groups(LONGER)


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_cancel_a_running_and_a_queued_job(tmp_path: Path, ray_session: None) -> None:
    with service(tmp_path, max_concurrent_jobs=1) as client:
        running = client.post("/jobs", json=LONGER).json()["id"]
        queued = client.post("/jobs", json={**LONGER, "seed": 1}).json()["id"]

        response = client.delete(f"/jobs/{queued}")
        assert response.status_code == 202 and response.json()["state"] == "cancelled"
        assert response.json()["started_at"] is None  # it never ran

        wait_for(client, running, lambda j: j["state"] == "running" and j["progress"]["done"] >= 1)
        response = client.delete(f"/jobs/{running}")
        assert response.status_code == 202 and response.json()["cancel_requested"]
        asked = time.monotonic()
        job = wait_for(client, running, lambda j: j["state"] == "cancelled", timeout=60)
        assert time.monotonic() - asked < 30
        assert job["progress"]["done"] < 19
        assert client.delete(f"/jobs/{running}").status_code == 409
        detail = client.get(f"/jobs/{running}/result").json()["detail"]
        assert detail == f"job {running} has no result: it is cancelled"
        assert client.get(f"/jobs/{queued}").json()["state"] == "cancelled"


def test_taskgroup_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The real command: uvicorn + its own local Ray. ``ray.init()`` replaces the SIGTERM handler; the service
    restores uvicorn's, so SIGTERM shuts it down gracefully: the running job's driver is stopped and the job
    is back in the queue, and nothing is left running."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "TASKGROUP_API_TOKEN")}
    env.update(
        TASKGROUP_DATA_DIR=str(tmp_path / "data"),
        TASKGROUP_RUNS_DIR=str(tmp_path / "runs"),
        TASKGROUP_RAY_NUM_CPUS="1",
    )
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--db", db, "--no-dashboard"]
    log = (tmp_path / "serve.log").open("wb")
    root = Path(__file__).resolve().parents[2]
    service = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _healthy(base, service, tmp_path / "serve.log")
        deadline = time.monotonic() + 120
        job_id = httpx.post(f"{base}/jobs", json=LONGER, timeout=30).json()["id"]
        while httpx.get(f"{base}/jobs/{job_id}", timeout=30).json()["state"] != "running":
            assert time.monotonic() < deadline + 120, "the job never started"
            time.sleep(0.5)
        drivers = httpx.get(f"{base}/healthz", timeout=30).json()["service"]["info"]["running"]
        assert drivers == [job_id]
        service.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught: the exit status is -SIGTERM
        assert service.wait(timeout=90) in (0, -signal.SIGTERM)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert f"stopping the driver of job {job_id}" in text
    assert "Application shutdown complete" in text and "Finished server process" in text
    store = open_store(db)
    try:
        assert store.get_job(job_id).state == "queued"  # resumable by the next start
    finally:
        store.close()
    assert not _processes_with(f"search.driver {job_id}"), "a driver outlived the service"


def _processes_with(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (from /proc, no ps needed)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in entry.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(entry.parent.name))
        except OSError:  # the process ended meanwhile
            continue
    return found


def _serve(port: int, db: str, ray_address: str, tmp_path: Path, log_name: str) -> Any:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "TASKGROUP_API_TOKEN")}
    env.update(TASKGROUP_DATA_DIR=str(tmp_path / "data"), TASKGROUP_RUNS_DIR=str(tmp_path / "runs"))
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--db", db]
    command += ["--address", ray_address, "--no-dashboard"]
    log = (tmp_path / log_name).open("wb")
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT), log


def _healthy(base: str, process: Any, log: Path, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the service did not become healthy"
        time.sleep(0.5)


@pytest.mark.postgres
def test_a_killed_service_restarts_on_postgresql_and_trains_nothing_twice(
    ray_session: None, pg_schema_url: str, tmp_path: Path
) -> None:
    """SIGKILL, not a graceful stop: the service gets no chance to stop its driver. The driver (told by the
    kernel that its parent died) puts the job back in the queue; a new service on the same PostgreSQL store
    resumes it, and the trainings that had finished are not trained again."""
    import signal
    import socket

    import httpx
    import ray

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    address = ray.get_runtime_context().gcs_address
    first, first_log = _serve(port, pg_schema_url, address, tmp_path, "first.log")
    try:
        _healthy(base, first, tmp_path / "first.log")
        job_id = httpx.post(f"{base}/jobs", json=LONGER, timeout=30).json()["id"]
        store = open_store(pg_schema_url)
        deadline = time.monotonic() + 300
        while sum(jt.training.state == TrainingState.SUCCEEDED for jt in store.job_trainings(job_id)) < 3:
            assert time.monotonic() < deadline, "the job never got going"
            time.sleep(0.3)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        first_log.close()
    deadline = time.monotonic() + 120
    while _processes_with(f"search.driver {job_id}"):
        assert time.monotonic() < deadline, "the orphaned driver did not stop"
        time.sleep(0.5)
    before = {jt.training.key: jt.training for jt in store.job_trainings(job_id)}
    finished = {k for k, t in before.items() if t.state == TrainingState.SUCCEEDED}
    assert 3 <= len(finished) < 19 and store.get_job(job_id).state == "queued"

    second, second_log = _serve(port, pg_schema_url, address, tmp_path, "second.log")
    try:
        _healthy(base, second, tmp_path / "second.log")
        deadline = time.monotonic() + 600
        while (state := httpx.get(f"{base}/jobs/{job_id}", timeout=30).json()["state"]) not in FINAL:
            assert time.monotonic() < deadline, "the resumed job did not finish"
            time.sleep(1)
        assert state == "succeeded", (tmp_path / "second.log").read_text()[-3000:]
        result = httpx.get(f"{base}/jobs/{job_id}/result", timeout=30).json()
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=90)
        second_log.close()
    after = {jt.training.key: jt.training for jt in store.job_trainings(job_id)}
    store.close()
    assert all(t.state == TrainingState.SUCCEEDED for t in after.values()) and len(after) == 19
    for key in finished:  # kept, not retrained
        assert after[key].attempts == 1 and after[key].finished_at == before[key].finished_at
    assert max(t.attempts for t in after.values()) <= 2  # at most the attempt the kill interrupted, again
    assert result["provenance"]["trained"] == 19 and result["provenance"]["reused"] == 0
    assert {frozenset(n["tasks"]) for n in result["curve"][2]["networks"]} == planted_groups(LONGER)
