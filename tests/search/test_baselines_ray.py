"""Stronger baselines on a real local Ray (issue 15): a job with ``baselines`` trains the extra all-task
networks once, reports them (the cross-stitch one above 1 SNT), a second identical job reuses them, and the
search's choice is what it is without them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from search.ray_runner import TuneRunner
from search.run import run_job
from search.store import JobState, Store, open_store
from search.submit import submit_job

pytestmark = [pytest.mark.ray, pytest.mark.slow]

BASELINES = {"weighting": ["uncertainty"], "architectures": ["cross-stitch"]}


def job_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "dataset": {"name": "planted", "params": {"groups": [2, 1]}},
        "tasks": ["a1", "a2", "b1"],
        "approximation": "hoa",
        "training": {"epochs": 4},
        "budgets": [1, 2, 3.5],
        "baselines": BASELINES,
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'jobs.db'}")


def run(store: Store, spec: dict[str, Any], tmp_path: Path) -> Any:
    job = submit_job(store, spec)
    final = run_job(store, job.id, runs_dir=tmp_path / "runs", runner=TuneRunner())
    assert final.state == JobState.SUCCEEDED, final.error
    return final.result


def test_baselines_train_once_are_reported_and_leave_the_choice_alone(
    ray_session: None, store: Store, tmp_path: Path
) -> None:
    first = run(store, job_spec(), tmp_path)
    searched = 3 + 3 + 3  # hoa: half singles, full singles, pairs
    extra = [t for t in first.provenance.trainings if t.baseline is not None]
    assert len(extra) == 2 and all(not t.reused and t.state == "succeeded" for t in extra)
    assert first.provenance.trained == searched + 2
    by_name = {b.name: b for b in first.baselines}
    uncertainty = by_name["all-task network (uncertainty)"]
    cross = by_name["all-task cross-stitch network"]
    assert uncertainty.cost == 1.0 and uncertainty.scoring_total is not None
    assert cross.cost > 1 and cross.architecture == "cross-stitch" and cross.scoring_total is not None
    assert first.best_all_task in {"all-task network (uncertainty)", "all-task cross-stitch network"}
    assert len(first.rounds) == 1  # the search's rounds only

    again = run(store, job_spec(), tmp_path)
    assert again.provenance.trained == 0 and again.provenance.reused == searched + 2
    assert again.baselines == first.baselines

    plain = run(store, job_spec(baselines={}), tmp_path)
    assert plain.provenance.trained == 0 and plain.provenance.reused == searched
    assert plain.curve == first.curve and plain.loss_table == first.loss_table
    assert {b.name for b in plain.baselines} < {b.name for b in first.baselines}
