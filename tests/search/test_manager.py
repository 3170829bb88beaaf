"""The job queue (:class:`search.manager.JobManager`) with stand-in driver scripts: concurrency, resume on
start-up, cancel, crash handling and shutdown, without paying for Ray (real drivers and Ray are tested in
``tests/api/test_jobs_e2e.py``)."""

from __future__ import annotations

import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from search.manager import JobFinishedError, JobManager, QueueSettings
from search.spec import JobSpec
from search.store import Store, open_store
from workers.spec import DatasetRef

ROOT = Path(__file__).resolve().parents[2]


def spec(n: int) -> JobSpec:
    return JobSpec(dataset=DatasetRef(name="planted"), tasks=["a1", "a2"], name=f"job {n}")


FAKE_DRIVER = """#!{python}
# Stands in for `python -m search.driver JOB --address A` (argv[1:3] are "-m search.driver"); the store
# URL comes in TASKGROUP_DATABASE_URL, never on the command line.
import os, signal, sys, time
sys.path.insert(0, {root!r})
from search.store import open_store
job_id, db = sys.argv[3], os.environ["TASKGROUP_DATABASE_URL"]
assert "--db" not in sys.argv
mode = {mode!r}
print("fake driver", job_id, mode, "nice=" + os.environ.get("TASKGROUP_TRAINING_NICE", "?"),
      "metrics=" + os.environ.get("PROMETHEUS_MULTIPROC_DIR", "-"), flush=True)
if mode == "crash":
    print("Traceback: something broke", flush=True)
    sys.exit(3)
store = open_store(db)
store.update_job(job_id, state="running")
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
while not stop:
    if store.get_job(job_id).cancel_requested:
        store.update_job(job_id, state="cancelled")
        sys.exit(0)
    time.sleep(0.05)
store.update_job(job_id, state="queued")
"""


@pytest.fixture
def fake_driver(tmp_path: Path) -> Callable[[str], str]:
    def make(mode: str) -> str:
        path = tmp_path / f"fake-driver-{mode}"
        path.write_text(FAKE_DRIVER.format(python=sys.executable, root=str(ROOT), mode=mode))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return str(path)

    return make


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def settings_for(tmp_path: Path, **overrides: Any) -> QueueSettings:
    return QueueSettings(**{"runs_dir": tmp_path / "runs", "data_dir": tmp_path / "data", **overrides})


def _manager(tmp_path: Path, python: str, **overrides: Any) -> tuple[JobManager, Store]:
    store = open_store(f"sqlite:///{tmp_path / 'queue.db'}")
    settings = settings_for(tmp_path, run_jobs=True, **overrides)
    return JobManager(store, settings, "127.0.0.1:1", python=python, poll_seconds=0.05), store


def test_manager_runs_at_most_n_drivers_and_shutdown_requeues(tmp_path: Path, fake_driver: Callable) -> None:
    manager, store = _manager(
        tmp_path, fake_driver("sleep"), max_concurrent_jobs=2, shutdown_grace_seconds=10
    )
    jobs = [store.create_job(spec(i)).id for i in range(4)]
    manager.start()
    try:
        _wait(lambda: sum(store.get_job(j).state == "running" for j in jobs) == 2)
        time.sleep(0.3)  # the manager had time to start more, and must not
        assert [store.get_job(j).state.value for j in jobs] == ["running", "running", "queued", "queued"]
        assert sorted(manager.running_jobs()) == sorted(jobs[:2])
        cancelled = manager.cancel(jobs[3])  # queued here: cancelled at once
        assert cancelled.state == "cancelled"
        manager.cancel(jobs[0])  # running: through the store flag its driver polls
        _wait(lambda: store.get_job(jobs[0]).state == "cancelled")
        _wait(lambda: store.get_job(jobs[2]).state == "running")  # the freed slot goes to the next job
        with pytest.raises(JobFinishedError):
            manager.cancel(jobs[0])
        with pytest.raises(KeyError):
            manager.cancel("nope")
    finally:
        manager.shutdown()
    states = [store.get_job(j).state.value for j in jobs]
    assert states == ["cancelled", "queued", "queued", "cancelled"]  # running ones went back to the queue
    assert manager.running_jobs() == []
    log = (tmp_path / "runs" / "logs" / f"job-{jobs[1]}.log").read_text()
    assert f"fake driver {jobs[1]} sleep" in log
    store.close()


def test_manager_resumes_unfinished_jobs_oldest_first(tmp_path: Path, fake_driver: Callable) -> None:
    manager, store = _manager(tmp_path, fake_driver("sleep"), max_concurrent_jobs=1)
    first = store.create_job(spec(1)).id
    second = store.create_job(spec(2)).id
    store.update_job(second, state="running")  # left running by a service that died
    manager.start()
    try:
        _wait(lambda: manager.running_jobs() == [first])  # the oldest unfinished job first
        time.sleep(0.3)  # the manager had time to start the other one, and must not: one slot
        assert manager.running_jobs() == [first] and not manager.log_path(second).exists()
        manager.cancel(first)
        _wait(lambda: manager.running_jobs() == [second])  # the job left running resumes in the freed slot
        _wait(lambda: f"fake driver {second} sleep" in manager.log_path(second).read_text())
        assert store.get_job(first).state == "cancelled"
    finally:
        manager.shutdown()
    assert store.get_job(second).state == "queued"  # stopped by the shutdown: resumable again
    store.close()


def test_manager_hands_drivers_their_priority_and_metrics_folder(
    tmp_path: Path, fake_driver: Callable
) -> None:
    """Each driver gets the service's TASKGROUP_TRAINING_NICE (its trainings run below the service) and the
    folder where it counts its trainings for /metrics; the queue's waiting jobs exclude the running one."""
    store = open_store(f"sqlite:///{tmp_path / 'queue.db'}")
    settings = settings_for(tmp_path, run_jobs=True, max_concurrent_jobs=1, training_nice=4)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    manager = JobManager(
        store,
        settings,
        "127.0.0.1:1",
        python=fake_driver("sleep"),
        poll_seconds=0.05,
        metrics_dir=metrics_dir,
    )
    first, second = (store.create_job(spec(i)).id for i in range(2))
    assert manager.waiting_jobs() == [first, second]
    manager.start()
    try:
        _wait(lambda: manager.running_jobs() == [first])
        assert manager.waiting_jobs() == [second]
        _wait(lambda: f"nice=4 metrics={metrics_dir}" in manager.log_path(first).read_text())
    finally:
        manager.shutdown()
    store.close()


def _run_until_failed(manager: JobManager, store: Store) -> Any:
    """Queue one job, run the manager until the job has failed, and return the job."""
    job_id = store.create_job(spec(1)).id
    manager.start()
    try:
        _wait(lambda: store.get_job(job_id).state == "failed")
    finally:
        manager.shutdown()
    return store.get_job(job_id)


def test_manager_restarts_a_crashing_driver_then_fails_the_job(tmp_path: Path, fake_driver: Callable) -> None:
    manager, store = _manager(tmp_path, fake_driver("crash"), driver_retries=2)
    job = _run_until_failed(manager, store)
    job_id = job.id
    assert "exited with code 3 before finishing (3 times)" in job.error
    assert "Traceback: something broke" in job.error
    log = (tmp_path / "runs" / "logs" / f"job-{job_id}.log").read_text()
    assert log.count("--- driver started") == 3
    store.close()


def test_manager_fails_a_job_whose_driver_cannot_start(tmp_path: Path) -> None:
    manager, store = _manager(tmp_path, str(tmp_path / "no-such-python"), driver_retries=1)
    error = _run_until_failed(manager, store).error
    assert error.startswith("the driver could not start: ") and "no-such-python" in error
    assert error.endswith("(2 times)")
    store.close()


def test_manager_without_run_jobs_never_starts_a_driver(tmp_path: Path, fake_driver: Callable) -> None:
    settings = settings_for(tmp_path, run_jobs=False)
    store = open_store(f"sqlite:///{tmp_path / 'queue.db'}")
    manager = JobManager(store, settings, None, python=fake_driver("crash"), poll_seconds=0.05)
    job_id = store.create_job(spec(1)).id
    manager.start()
    time.sleep(0.3)
    manager.shutdown()
    assert store.get_job(job_id).state == "queued"
    assert not (tmp_path / "runs" / "logs").exists()
    with pytest.raises(ValueError, match="ray_address"):
        JobManager(store, settings_for(tmp_path, run_jobs=True), None)
    store.close()
