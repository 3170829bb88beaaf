"""Kept weights through real Ray Tune trials: a planted job searches without weights, then the networks of
one budget train again with ``keep_weights`` (what a finalize does), their Tune checkpoints land in the run's
storage and in the store, and the exported bundle predicts the test split with the losses the store recorded.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
import torch

from search.control import JobControl
from search.export import NotFinalizedError, export_bundle
from search.ray_runner import TuneRunner
from search.run import run_job
from search.spec import Resources
from search.store import JobState, Store, TrainingState, open_store
from search.submit import submit_job
from search.weights import CHECKPOINT_FILE
from workers.bundle import load_bundle
from workers.losses import TaskEvaluator
from workers.train import load_dataset

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPEC = {
    "dataset": {"name": "planted", "params": {"groups": [2, 1], "samples": 512, "evaluation_samples": 512}},
    "tasks": ["a1", "a2", "b1"],
    "training": {"epochs": 4},
    "capacities": {"subsets": [1.0], "singles": []},
    "budgets": [1.0, 2.0],
}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'jobs.db'}")


def _keep_weights(store: Store, job_id: str, budget: float, runs: Path) -> list[str]:
    """Train the job's chosen networks at ``budget`` again, keeping their weights; their keys."""
    job = store.get_job(job_id)
    chosen = {frozenset(n.tasks) for n in job.result.at(budget).networks}  # type: ignore[union-attr]
    keys = [
        link.training.key
        for link in store.job_trainings(job_id)
        if frozenset(link.training.spec.tasks) in chosen
    ]
    specs = job.plan.specs()  # type: ignore[union-attr]
    outcome = TuneRunner().run(
        [(k, specs[k].model_copy(update={"keep_weights": True})) for k in keys],
        control=JobControl(job_id),
        store=store,
        resources=Resources(cpus=1),
        storage_path=runs,
    )
    assert sorted(outcome.succeeded) == sorted(keys), outcome.failed
    return keys


def test_tune_checkpoints_are_recorded_exported_and_predict_the_stored_losses(
    ray_session: None, store: Store, tmp_path: Path
) -> None:
    job = submit_job(store, SPEC)
    final = run_job(store, job.id, runs_dir=tmp_path / "runs", runner=TuneRunner())
    assert final.state is JobState.SUCCEEDED, final.error
    assert store.list_checkpoints() == []  # a search keeps no weights
    with pytest.raises(NotFinalizedError, match="finalize_budgets: \\[2\\]"):
        export_bundle(store, job.id, 2.0, io.BytesIO())
    before = {k: store.get_training(k) for k in (link.training.key for link in store.job_trainings(job.id))}

    keys = _keep_weights(store, job.id, 2.0, tmp_path / "runs")  # succeeded without weights: trained again
    kept = store.get_checkpoints(keys)
    assert set(kept) == set(keys)
    for key, record in kept.items():
        path = Path(record.uri) / CHECKPOINT_FILE
        assert path.is_file() and path.is_relative_to(tmp_path / "runs")  # in Tune's storage
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256
        assert path.stat().st_size == record.size_bytes
        after = store.get_training(key)
        assert after.state is TrainingState.SUCCEEDED and after.result == before[key].result  # first success

    buffer = io.BytesIO()
    manifest = export_bundle(store, job.id, 2.0, buffer)
    bundle = load_bundle(io.BytesIO(buffer.getvalue()))
    data, splits = load_dataset(SPEC["dataset"])
    raw = bundle.predict_raw(splits["test"].inputs)
    for entry in manifest.networks:
        stored = before[entry.training_key].result  # type: ignore[index]
        for task in entry.serves:
            evaluator = TaskEvaluator(data.task(task))
            evaluator.update(torch.from_numpy(raw[task]), splits["test"].targets[task])
            assert evaluator.result().loss == pytest.approx(stored.scoring[task], rel=1e-5)

    again = _keep_weights(store, job.id, 2.0, tmp_path / "runs")  # a duplicate: the first checkpoint stays
    assert store.get_checkpoints(again) == kept
    folders = {p.parent for p in (tmp_path / "runs").rglob(CHECKPOINT_FILE)}
    assert folders == {Path(r.uri) for r in kept.values()}  # the duplicates' files were deleted
