"""Search jobs on a real local Ray (2 CPUs, started once per session) with the `planted` dataset.

Checks the issue's integration promises: exhaustive finds the planted grouping; an identical job reuses
every training; a job whose driver is killed resumes and trains only what is missing; a training that
raises (or whose worker process dies) is retried; cancel stops the job and keeps what finished.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from search.ray_runner import TuneRunner
from search.run import run_job
from search.store import JobState, Store, TrainingState, open_store
from search.submit import submit_job
from tests.search.drivers import kill_driver_when, succeeded
from workers.datasets import get_dataset

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# Small and fast (8 epochs): these tests check the job machinery, not the planted structure, which needs
# 12-20 epochs (see test_exhaustive_finds_the_planted_grouping and docs/datasets.md).
PLANTED = {"groups": [2, 1]}
TRAINING = {"epochs": 8}


def job_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "dataset": {"name": "planted", "params": dict(PLANTED)},
        "tasks": ["a1", "a2", "b1"],
        "training": dict(TRAINING),
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'jobs.db'}")


def run(
    store: Store,
    spec: dict[str, Any],
    tmp_path: Path,
    trainable: Callable[[dict[str, Any]], None] | None = None,
    max_retries: int = 2,
) -> Any:
    job = submit_job(store, spec)
    runner = TuneRunner(trainable)
    return run_job(store, job.id, runs_dir=tmp_path / "runs", runner=runner, max_retries=max_retries)


def test_exhaustive_finds_the_planted_grouping(ray_session: None, store: Store, tmp_path: Path) -> None:
    # The planted dataset's defaults: two groups of two tasks; each group helps itself and hurts the other.
    spec = {"dataset": {"name": "planted"}, "tasks": ["a1", "a2", "b1", "b2"], "budgets": [2.0]}
    final = run(store, spec, tmp_path)
    assert final.state == JobState.SUCCEEDED, final.error
    result = final.result
    assert result.provenance.trained == 15 + 4 and result.provenance.reused == 0
    (grouping,) = result.curve
    networks = sorted(sorted(net.tasks) for net in grouping.networks)
    planted = get_dataset("planted", {}).planted_groups()  # type: ignore[attr-defined]
    assert networks == sorted(sorted(g) for g in planted)
    assert grouping.cost == 2.0
    all_task = next(b for b in result.baselines if b.name == "all-task network")
    assert grouping.selection_total < all_task.selection_total


def test_identical_job_reuses_every_training(ray_session: None, store: Store, tmp_path: Path) -> None:
    first = run(store, job_spec(), tmp_path)
    assert first.state == JobState.SUCCEEDED, first.error
    experiments = set((tmp_path / "runs").iterdir())
    second = run(store, job_spec(), tmp_path)
    assert second.state == JobState.SUCCEEDED
    assert second.result.provenance.trained == 0
    assert second.result.provenance.reused == 10
    assert second.progress.reused == 10 and second.progress.done == 10
    assert second.result.curve == first.result.curve
    assert set((tmp_path / "runs").iterdir()) == experiments  # no Tune run at all: solving only


def flaky(marker_dir: Path, failure: Callable[[], None]) -> Callable[[dict[str, Any]], None]:
    """A trainable that fails once per training (first attempt), then trains for real."""
    from search.trainable import train_trial

    def trainable(config: dict[str, Any]) -> None:
        marker = marker_dir / config["training"]["key"]
        if not marker.exists():
            marker.touch()
            failure()
        train_trial(config)

    return trainable


def _raise() -> None:
    raise RuntimeError("injected failure on the first attempt")


def _die() -> None:
    os._exit(17)  # the worker process dies without a Python exception


@pytest.mark.parametrize("failure", [_raise, _die], ids=["raises", "process-dies"])
def test_failing_training_is_retried_and_succeeds(
    ray_session: None, store: Store, tmp_path: Path, failure: Callable[[], None]
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    spec = job_spec(tasks=["a1", "b1"], capacities={"subsets": [1.0], "singles": []})
    final = run(store, spec, tmp_path, trainable=flaky(markers, failure), max_retries=2)
    assert final.state == JobState.SUCCEEDED, final.error
    trainings = final.result.provenance.trainings
    assert len(trainings) == 3
    assert all(t.state == "succeeded" and t.attempts == 2 for t in trainings)
    assert final.progress.done == 3 and final.progress.failed == 0  # a retried training counts once


def test_training_that_keeps_failing_is_reported_and_the_job_still_solves(
    ray_session: None, store: Store, tmp_path: Path
) -> None:
    from search.trainable import train_trial

    def broken_pair(config: dict[str, Any]) -> None:
        if len(config["training"]["spec"]["tasks"]) == 2:
            raise ValueError("this pair always fails")
        train_trial(config)

    spec = job_spec(tasks=["a1", "b1"], capacities={"subsets": [1.0], "singles": []})
    final = run(store, spec, tmp_path, trainable=broken_pair, max_retries=1)
    assert final.state == JobState.SUCCEEDED, final.error
    (missing,) = final.result.missing
    assert missing.tasks == ["a1", "b1"] and "this pair always fails" in missing.error
    failed = [t for t in final.result.provenance.trainings if t.state == "failed"]
    assert len(failed) == 1 and failed[0].attempts == 2
    for record in final.result.curve:
        assert all(len(net.tasks) == 1 for net in record.networks)


def test_job_fails_with_a_reason_when_a_task_cannot_be_served(
    ray_session: None, store: Store, tmp_path: Path
) -> None:
    from search.trainable import train_trial

    def no_b1(config: dict[str, Any]) -> None:
        if "b1" in config["training"]["spec"]["tasks"]:
            raise ValueError("b1 never trains")
        train_trial(config)

    spec = job_spec(tasks=["a1", "b1"], capacities={"subsets": [1.0], "singles": []})
    final = run(store, spec, tmp_path, trainable=no_b1, max_retries=0)
    assert final.state == JobState.FAILED
    assert "b1" in final.error and "failed" in final.error


def test_cancel_stops_the_job_and_keeps_finished_trainings(
    ray_session: None, store: Store, tmp_path: Path
) -> None:
    job = submit_job(store, job_spec(training={"epochs": 40}))
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(final=run_job(store, job.id, runs_dir=tmp_path / "runs")), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = [jt.training.state for jt in store.job_trainings(job.id)]
        if TrainingState.SUCCEEDED in states:
            break
        time.sleep(0.2)
    store.request_cancel(job.id)
    thread.join(timeout=120)
    assert not thread.is_alive()
    final = outcome["final"]
    assert final.state == JobState.CANCELLED
    trainings = store.job_trainings(job.id)
    done = [jt for jt in trainings if jt.training.state == TrainingState.SUCCEEDED]
    assert 1 <= len(done) < len(trainings)
    assert all(jt.training.result is not None for jt in done)


def test_killed_driver_resumes_and_trains_only_what_is_missing(
    ray_session: None, store: Store, tmp_path: Path
) -> None:
    job = submit_job(store, job_spec(training={"epochs": 20}))
    kill_driver_when(store, job.id, tmp_path / "runs", lambda: succeeded(store, job.id) >= 2)
    before = {jt.training.key: jt.training for jt in store.job_trainings(job.id)}
    finished_before = {k for k, t in before.items() if t.state == TrainingState.SUCCEEDED}
    assert 2 <= len(finished_before) < len(before)
    assert store.get_job(job.id).state == JobState.RUNNING  # the driver died without a word

    final = run_job(store, job.id, runs_dir=tmp_path / "runs")
    assert final.state == JobState.SUCCEEDED, final.error
    after = {jt.training.key: jt.training for jt in store.job_trainings(job.id)}
    for key in finished_before:  # kept, not retrained
        assert after[key].finished_at == before[key].finished_at
        assert after[key].attempts == before[key].attempts
    assert all(t.state == TrainingState.SUCCEEDED for t in after.values())
    assert final.result.provenance.reused == 0  # its own trainings are not "reused"
