"""Submission validates everything a user can get wrong before a job exists; the dataset is built once per
submission and once per run; the plan is stored whole; plan and trainer agree on epochs; progress counts a
training once however often it is reported. No Ray here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from search.plan import make_plan
from search.progress import ProgressTracker
from search.run import JobRun
from search.spec import JobSpec
from search.store import Store, open_store
from search.submit import ClusterCapacity, SpecError, prepare, submit_job
from workers.datasets import DATASETS
from workers.spec import TrainingSpec, epochs_for
from workers.train import train_candidate

PLANTED = {"dataset": {"name": "planted"}, "tasks": ["a1", "a2", "b1"]}


def spec(**overrides: Any) -> dict[str, Any]:
    return {**PLANTED, **overrides}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'jobs.db'}")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"training": {"weighting": "no-such-method"}},
            "training.weighting",
            "choose one of dtp, dwa, equal",
        ),
        (
            {"training": {"weighting": "gradnorm", "weighting_options": {"alpha": -1}}},
            "training.weighting_options",
            "alpha: Input should be greater than or equal to 0",
        ),
        (
            {"training": {"weighting": "dwa", "weighting_options": {"bogus": 1}}},
            "training.weighting_options",
            "bogus: unknown option",
        ),
        (
            {"capacities": {"subsets": [1.0], "singles": [0.001]}},
            "capacities",
            "capacity 0.001 cannot be built for 1 task(s) of this dataset: the nearest network costs 0.0115",
        ),
        ({"tasks": ["a1", "zz"]}, "tasks", "['zz'] are not tasks of dataset 'planted'"),
        ({"dataset": {"name": "planted", "params": {"samplez": 3}}}, "dataset.params", "samplez"),
        ({"dataset": {"name": "nope"}}, "dataset", "unknown dataset 'nope'"),
    ],
)
def test_what_would_fail_every_training_is_refused_naming_the_field(
    store: Store, change: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(SpecError) as info:
        submit_job(store, spec(**change))
    assert info.value.field == field and message in info.value.problem
    assert str(info.value).startswith(f"{field}: ")
    assert store.count_jobs() == 0  # nothing exists, nothing trains


def test_spec_fields_of_the_one_grammar_are_pydantic_errors() -> None:
    with pytest.raises(ValidationError, match="budgets"):
        prepare(spec(budgets="1:x"))
    with pytest.raises(ValidationError, match="weights"):
        prepare(spec(weights="a1=-1"))
    with pytest.raises(ValidationError, match="common unit of 1e-05 SNT"):
        prepare(spec(capacities={"subsets": [1.0], "singles": [0.00001]}))
    assert prepare(spec(weights="a1=2,b1=0.5")).spec.weights == {"a1": 2.0, "b1": 0.5}
    assert prepare(spec(budgets="1e9")).spec.budgets == [1e9]  # costs nothing to solve: see test_service


def test_a_plan_too_large_names_a_cheaper_approximation() -> None:
    tasks = [f"a{i}" for i in range(1, 12)]
    with pytest.raises(SpecError, match="use approximation 'hoa'") as info:
        prepare({"dataset": {"name": "planted", "params": {"groups": [11]}}, "tasks": tasks})
    assert info.value.field == "approximation"


def test_resources_beyond_the_largest_node_are_refused() -> None:
    small = ClusterCapacity(cpus=2, gpus=0, where="this machine")
    with pytest.raises(SpecError, match="4 CPUs per training, but this machine has 2"):
        prepare(spec(resources={"cpus": 4}), small)
    with pytest.raises(SpecError, match="there is no GPU: set gpus to 0") as info:
        prepare(spec(resources={"gpus": 1}), small)
    assert info.value.field == "resources.gpus"
    assert prepare(spec(resources={"cpus": 2}), small).spec.resources.cpus == 2


class CountingPlanted(DATASETS["planted"]):  # type: ignore[misc, valid-type]
    """The planted dataset, counting how often it is built."""

    built = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).built += 1
        super().__init__(*args, **kwargs)


def test_the_dataset_is_built_once_per_submission_and_once_per_run(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(DATASETS, "planted", CountingPlanted)
    CountingPlanted.built = 0
    submission = prepare(spec())
    assert CountingPlanted.built == 1
    job = submit_job(store, submission)
    assert CountingPlanted.built == 1
    assert store.get_job(job.id).plan == submission.plan  # the plan is stored whole
    run = JobRun(store, job.id)
    prepared = run.prepare(store.get_job(job.id))
    assert CountingPlanted.built == 2
    assert prepared.plan == submission.plan and prepared.strategy.name == submission.spec.approximation


def test_a_run_plans_again_only_when_the_dataset_changed(store: Store) -> None:
    job = submit_job(store, spec())
    stale = make_plan(job.spec, "an older file")
    store.update_job(job.id, plan=stale)
    prepared = JobRun(store, job.id).prepare(store.get_job(job.id))
    assert prepared.plan == job.plan and prepared.plan != stale
    assert store.get_job(job.id).plan == job.plan


@settings(max_examples=300, deadline=None)
@given(fidelity=st.floats(min_value=1e-3, max_value=1.0), epochs=st.integers(min_value=1, max_value=500))
def test_plan_and_trainer_agree_on_epochs(fidelity: float, epochs: int) -> None:
    """One rule (workers.spec.epochs_for) for the plan's cost and the trainer's schedule."""
    job = JobSpec.model_validate(
        {**PLANTED, "fidelity": fidelity, "training": {"epochs": epochs}, "capacities": {"singles": []}}
    )
    plan = make_plan(job, "fp")
    specs = [plan.training_spec(t) for t in plan.trainings]
    assert {s.max_epochs for s in specs} == {epochs_for(fidelity, epochs)}
    assert plan.snt_epochs == pytest.approx(sum(s.capacity * s.max_epochs for s in specs))
    assert 1 <= epochs_for(fidelity, epochs) <= epochs


@pytest.mark.parametrize(("fidelity", "epochs", "expected"), [(0.28, 25, 7), (0.3, 10, 3), (0.2, 3, 1)])
def test_the_trainer_runs_the_planned_epochs(fidelity: float, epochs: int, expected: int) -> None:
    """Trained for real (patience above the schedule, so no early stop): the epochs run are the plan's.
    0.28 x 25 is 7.000000000000001 in floating point; the plan used to say 8."""
    job = JobSpec.model_validate({**PLANTED, "fidelity": fidelity, "training": {"epochs": epochs}})
    plan = make_plan(job, "fp")
    planned = plan.training_spec(plan.trainings[0])
    assert planned.max_epochs == expected
    tiny = {"samples": 64, "evaluation_samples": 32}
    training = TrainingSpec.model_validate(
        {
            **planned.model_dump(),
            "dataset": {"name": "planted", "params": tiny},
            "settings": {**planned.settings.model_dump(), "patience": 1000},
            "threads": 1,
        }
    )
    assert train_candidate(training).epochs_run == expected


def test_progress_counts_a_training_once_however_often_it_is_reported() -> None:
    tracker = ProgressTracker(keys=["reused", "k", "x"], succeeded={"reused"}, reused=1)
    for kind in ("started", "succeeded", "started", "succeeded"):  # a retried trial reporting twice
        tracker.record("k", kind)
    assert tracker.record("k", "failed") is False  # a late failure of a training that succeeded
    tracker.record("x", "started")
    tracker.record("x", "failed")
    snapshot = tracker.snapshot()
    assert (snapshot.done, snapshot.reused, snapshot.trained, snapshot.failed) == (2, 1, 1, 1)
    assert (snapshot.running, snapshot.pending, snapshot.estimate_seconds) == (0, 0, 0.0)
    tracker.record("x", "started")  # a failed training retried: no longer failed
    assert tracker.snapshot().failed == 0 and tracker.snapshot().running == 1


@pytest.mark.parametrize(
    ("model", "field", "message"),
    [
        ({"architecture": "retired"}, "training.model.architecture", "unknown architecture 'retired'"),
        (
            {"architecture": "nddr"},
            "training.model.architecture",
            "'nddr' does not apply to this dataset's vector",
        ),
        (
            {"architecture": "mtan", "options": {"reduction": 0}},
            "training.model.options",
            "model options for 'mtan': reduction:",
        ),
    ],
)
def test_an_architecture_the_trainer_would_refuse_is_refused_at_submission(
    store: Store, model: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(SpecError) as info:
        submit_job(store, spec(training={"model": model}))
    assert info.value.field == field and message in info.value.problem
    assert store.count_jobs() == 0
    ok = prepare(spec(training={"model": {"architecture": "cross-stitch", "options": {"mixing": 0.1}}}))
    assert ok.spec.training.model.architecture == "cross-stitch"
