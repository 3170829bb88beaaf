"""Finalize on a real local Ray (issue 13): a job's chosen networks trained to the end with their weights
kept, measured beside the search's prediction, exported, and predicting the held-out test split with the
test losses the store recorded; a finalize whose driver is killed resumes without retraining what finished;
the command line's --finalize, export and predict on a tabular job.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from api.cli import main as cli_main
from search.export import export_bundle
from search.ray_runner import TuneRunner
from search.run import run_job
from search.store import JobState, Store, TrainingState, open_store
from search.submit import submit_job
from tests.bundles import write_tabular_csv
from tests.search.drivers import kill_driver_when
from workers.bundle import load_bundle
from workers.datasets import get_dataset
from workers.losses import TaskEvaluator
from workers.train import load_dataset

pytestmark = [pytest.mark.ray, pytest.mark.slow]

PLANTED = {"name": "planted", "params": {"groups": [2, 1], "samples": 512, "evaluation_samples": 512}}


def hoa_spec(epochs: int = 4, **overrides: Any) -> dict[str, Any]:
    """HOA on 3 tasks (singles and pairs trained): at 1 SNT the only choice is the all-task network, which
    HOA predicts and only a finalize trains."""
    spec: dict[str, Any] = {
        "dataset": PLANTED,
        "tasks": ["a1", "a2", "b1"],
        "approximation": "hoa",
        "training": {"epochs": epochs},
        "capacities": {"subsets": [1.0], "singles": []},
        "budgets": [1.0, 2.0, 3.0],
        "finalize_budgets": [1.0, 2.0],
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'jobs.db'}")


def measured_test_loss(dataset: dict[str, Any], raw: dict[str, np.ndarray], task: str) -> float:
    data, splits = load_dataset(dataset)
    evaluator = TaskEvaluator(data.task(task))
    evaluator.update(torch.from_numpy(raw[task]), splits["test"].targets[task])
    return evaluator.result().loss


def test_hoa_job_finalizes_measures_exports_and_predicts_the_recorded_losses(
    ray_session: None, store: Store, tmp_path: Path
) -> None:
    job = submit_job(store, hoa_spec())
    final = run_job(store, job.id, runs_dir=tmp_path / "runs", runner=TuneRunner())
    assert final.state is JobState.SUCCEEDED, final.error
    result = final.result
    assert final.progress.phase == "finalize" and final.progress.done == final.progress.total == 3
    by_budget = {f.budget: f for f in result.finalized}
    assert sorted(by_budget) == [1.0, 2.0]
    one = by_budget[1.0]
    assert one.networks == ["a1,a2,b1"] and one.predicted_scoring_total is None  # predicted by HOA
    assert one.measured_scoring_total is not None and one.measured_selection_total is not None
    assert one.prediction_error == pytest.approx(
        (one.measured_selection_total - one.predicted_selection_total) / one.measured_selection_total
    )
    assert one.choice_changes is False  # one choice at 1 SNT
    two = by_budget[2.0]
    grouping = next(g for g in result.curve if g.budget == 2.0)
    assert two.predicted_scoring_total == grouping.scoring_total
    # measured at full fidelity: the same trainings as the search's, so the same totals
    assert two.measured_selection_total == pytest.approx(grouping.selection_total)
    assert two.measured_scoring_total == pytest.approx(grouping.scoring_total)

    kept = store.get_checkpoints(t for f in result.finalized for t in f.trainings)
    assert len(kept) == 3  # the predicted triple trained new, the two chosen at 2 SNT again with weights
    for budget in (1.0, 2.0):
        buffer = io.BytesIO()
        manifest = export_bundle(store, job.id, budget, buffer)
        bundle = load_bundle(io.BytesIO(buffer.getvalue()))
        _, splits = load_dataset(PLANTED)
        raw = bundle.predict_raw(splits["test"].inputs)
        for entry in manifest.networks:
            stored = store.get_training(entry.training_key).result
            for task in entry.serves:
                assert measured_test_loss(PLANTED, raw, task) == pytest.approx(stored.scoring[task], rel=1e-5)

    # the same job again: nothing trains, in the search or in the finalize
    again = run_job(store, submit_job(store, hoa_spec()).id, runs_dir=tmp_path / "runs", runner=TuneRunner())
    assert again.state is JobState.SUCCEEDED and again.result.provenance.trained == 0
    assert again.progress.phase == "finalize" and again.progress.reused == again.progress.total == 3
    assert again.result.finalized == result.finalized


def test_finalize_killed_mid_way_resumes_without_retraining_finished_networks(
    ray_session: None, store: Store, tmp_path: Path
) -> None:
    search = run_job(
        store, submit_job(store, hoa_spec(20, finalize_budgets=[])).id, runs_dir=tmp_path / "runs"
    )
    assert (
        search.state is JobState.SUCCEEDED
    )  # the search's trainings are in the store: the next job reuses them
    job = submit_job(store, hoa_spec(20))
    kill_driver_when(store, job.id, tmp_path / "runs", lambda: len(store.list_checkpoints()) >= 1)
    before = {c.training_key: c for c in store.list_checkpoints()}
    assert 1 <= len(before) < 3
    attempts = {k: store.get_training(k).attempts for k in before}
    assert store.get_job(job.id).state == JobState.RUNNING  # the driver died without a word

    final = run_job(store, job.id, runs_dir=tmp_path / "runs")
    assert final.state is JobState.SUCCEEDED, final.error
    after = {c.training_key: c for c in store.list_checkpoints()}
    assert len(after) == 3
    for key, checkpoint in before.items():  # finished before the kill: not trained again
        assert after[key] == checkpoint and store.get_training(key).attempts == attempts[key]
    assert all(f.measured_scoring_total is not None for f in final.result.finalized)
    assert all(
        store.get_training(t).state == TrainingState.SUCCEEDED
        for f in final.result.finalized
        for t in f.trainings
    )


def test_tabular_job_finalizes_from_the_command_line_and_predicts_in_the_users_units(
    ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKGROUP_RUNS_DIR", str(tmp_path / "runs"))
    csv = write_tabular_csv(tmp_path / "data.csv")
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    tasks = {"y": "regression", "z": "binary"}
    params = [
        "--param",
        f"path={csv}",
        "--param",
        f"tasks={json.dumps(tasks)}",
        "--param",
        'inputs=["a","b","c","d"]',
    ]
    common = [
        "--dataset",
        "tabular",
        *params,
        "--tasks",
        "y,z",
        "--epochs",
        "4",
        "--budgets",
        "1,2",
        "--db",
        db,
    ]
    assert cli_main(["search", *common, "--format", "json"]) == 0
    job_id = json.loads(capsys.readouterr().out)["job_id"]
    assert cli_main(["export", job_id, "--budget", "1", "-o", str(tmp_path / "b.zip"), "--db", db]) == 2
    assert f"taskgroup search --resume {job_id} --finalize 1" in capsys.readouterr().err

    assert cli_main(["search", "--resume", job_id, "--finalize", "1", "--db", db]) == 0
    out, err = capsys.readouterr()
    assert "finalizing 1 SNT in a new job" in err and "finalized (the chosen networks trained" in out
    finalized_id = err.split("in a new job ")[1].split()[0]
    assert "finalize: [" in err  # the progress of the finalize phase
    bundle_path = tmp_path / "b.zip"
    assert cli_main(["export", finalized_id, "--budget", "1", "-o", str(bundle_path), "--db", db]) == 0
    capsys.readouterr()

    dataset = get_dataset("tabular", {"path": str(csv), "tasks": tasks, "inputs": list("abcd")})
    test = dataset.split_frame("test")
    test.to_csv(tmp_path / "test.csv", index=False)
    predictions_path = tmp_path / "p.csv"
    assert (
        cli_main(["predict", str(bundle_path), str(tmp_path / "test.csv"), "-o", str(predictions_path)]) == 0
    )
    predictions = pd.read_csv(predictions_path)
    store = open_store(db, create=False)
    job = store.get_job(finalized_id)
    (record,) = job.result.finalized
    (key,) = record.trainings
    recorded = store.get_training(key).result
    _, std = dataset.target_scale["y"]  # type: ignore[attr-defined]
    mse = float(((predictions["y"].to_numpy() - test["y"].to_numpy()) ** 2).mean())
    assert mse / std**2 == pytest.approx(recorded.scoring["y"], rel=1e-4)  # through a CSV round trip
    assert record.measured_scoring_total == pytest.approx(sum(recorded.scoring.values()))
