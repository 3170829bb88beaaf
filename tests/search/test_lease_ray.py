"""One training per network across jobs (issue 14) on a real local Ray: two concurrent jobs sharing trainings
train their union once; a job waits for a training another run holds and reuses it; a dead holder's lease
expires and the job takes the training over. The store's lease rules themselves: tests/search/test_store.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from search.run import run_job
from search.store import JobState, Store, TrainingState, open_store
from search.submit import submit_job
from workers.train import train_network

pytestmark = [pytest.mark.ray, pytest.mark.slow]

DATASET = {"name": "planted", "params": {"groups": [2, 2], "samples": 256, "evaluation_samples": 256}}


def spec(tasks: list[str], epochs: int = 6) -> dict[str, Any]:
    return {
        "dataset": DATASET,
        "tasks": tasks,
        "training": {"epochs": epochs},
        "capacities": {"subsets": [1.0], "singles": []},
    }


def keys_of(store: Store, job_id: str) -> set[str]:
    return {link.training.key for link in store.job_trainings(job_id)}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    return open_store(request.getfixturevalue("pg_schema_url"))


def test_two_concurrent_jobs_sharing_trainings_train_their_union_once(
    ray_session: None, store: Store, tmp_path: Path
) -> None:
    """{a1,a2,b1} and {a1,a2,b2}: 7 trainings each, 3 shared (a1, a2, a1a2), run by two drivers at once."""
    import ray

    first, second = submit_job(store, spec(["a1", "a2", "b1"])), submit_job(store, spec(["a1", "a2", "b2"]))
    env = dict(os.environ, TASKGROUP_RUNS_DIR=str(tmp_path / "runs"))
    address = ray.get_runtime_context().gcs_address
    drivers = [
        subprocess.Popen(
            [sys.executable, "-m", "search.driver", job.id, "--db", store.url, "--address", address],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for job in (first, second)
    ]
    try:
        for driver in drivers:
            _, err = driver.communicate(timeout=600)
            assert driver.returncode == 0, err.decode()[-3000:]
    finally:
        for driver in drivers:
            if driver.poll() is None:
                driver.kill()
    shared = keys_of(store, first.id) & keys_of(store, second.id)
    union = keys_of(store, first.id) | keys_of(store, second.id)
    assert len(shared) == 3 and len(union) == 11
    records = store.get_trainings(union)
    assert all(r.state is TrainingState.SUCCEEDED for r in records.values())
    assert {k: r.attempts for k, r in records.items()} == dict.fromkeys(union, 1)  # each trained once
    results = [store.get_job(job.id).result for job in (first, second)]
    assert all(r is not None for r in results)
    # the shared trainings count as trained by one job and reused by the other
    assert sum(r.provenance.trained for r in results) == 11  # type: ignore[union-attr]
    assert sum(r.provenance.reused for r in results) == 3  # type: ignore[union-attr]
    assert store.lease_holders(union) == {}  # every lease released


def test_a_job_waits_for_a_training_another_run_holds_and_reuses_it(
    ray_session: None, store: Store, tmp_path: Path
) -> None:
    job = submit_job(store, spec(["a1", "a2"], epochs=4))
    plan = job.plan
    assert plan is not None
    held = next(t for t in plan.trainings if t.tasks == ["a1", "a2"])
    store.ensure_trainings(plan.specs())
    assert store.claim_trainings([held.key], "other-run", 60) == [held.key]
    others = [t.key for t in plan.trainings if t.key != held.key]

    def other_run() -> None:  # trains the held network itself, renewing its lease, once the job waits
        while any(store.get_training(k).state is not TrainingState.SUCCEEDED for k in others):
            store.renew_leases("other-run", 60)
            time.sleep(0.2)
        store.mark_training_running(held.key)
        trained = train_network(plan.training_spec(held))
        store.finish_training(held.key, trained.result)
        store.release_leases("other-run")

    thread = threading.Thread(target=other_run)
    thread.start()
    final = run_job(store, job.id, runs_dir=tmp_path / "runs")
    thread.join(timeout=60)
    assert final.state is JobState.SUCCEEDED, final.error
    assert store.get_training(held.key).attempts == 1  # trained by the other run only
    reused = {link.training.key for link in store.job_trainings(job.id) if link.reused}
    assert reused == {held.key}
    assert final.progress.reused == 1 and final.progress.done == final.progress.total == 3


def test_a_dead_holders_lease_expires_and_the_job_takes_the_training_over(
    ray_session: None, store: Store, tmp_path: Path
) -> None:
    job = submit_job(store, spec(["a1", "a2"], epochs=3))
    assert job.plan is not None
    keys = [t.key for t in job.plan.trainings]
    store.ensure_trainings(job.plan.specs())
    store.mark_training_running(keys[0])  # the dead run had started it
    store.claim_trainings(keys[:2], "dead-run", 3)  # and never renews: its leases end 3 s from now
    started = time.monotonic()
    final = run_job(store, job.id, runs_dir=tmp_path / "runs")
    assert final.state is JobState.SUCCEEDED, final.error
    assert time.monotonic() - started >= 3  # it waited for the leases to expire
    records = store.get_trainings(keys)
    assert all(r.state is TrainingState.SUCCEEDED for r in records.values())
    assert records[keys[0]].attempts == 2 and records[keys[1]].attempts == 1  # taken over, trained once more
    assert not any(link.reused for link in store.job_trainings(job.id))
