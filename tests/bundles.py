"""Jobs with kept weights for tests of the export, the API and the CLI, without Ray: the trainings run in
this process (``workers.train.train_network``), and the chosen networks' weights are kept the way a Tune
trial keeps them (a checkpoint folder with ``network.pt``, recorded in the store).
``tests/search/test_export_ray.py`` checks the same path through real Tune trials."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from search.plan import Plan
from search.result import search_result
from search.states import JobState
from search.store import CheckpointRecord, JobRecord, Store
from search.submit import submit_job
from workers.checkpoint import save_checkpoint
from workers.train import TrainedNetwork, train_network

TABULAR_TASKS = {"y": "regression", "z": "binary", "m": "multiclass"}


def write_tabular_csv(path: Path, rows: int = 500, seed: int = 0) -> Path:
    """Four inputs (``a`` with empty cells), a regression ``y`` in large units (mean 50, sd about 20), a
    binary ``z`` and a three-class ``m`` with text labels; some labels are missing."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 4))
    frame = pd.DataFrame(x * [1.0, 2.0, 0.5, 3.0] + [0.0, 5.0, -1.0, 10.0], columns=["a", "b", "c", "d"])
    frame["y"] = 50 + 20 * np.tanh(x[:, 0] + x[:, 1]) + rng.standard_normal(rows)
    frame["z"] = (x[:, 1] - x[:, 3] + 0.3 * rng.standard_normal(rows) > 0).astype(float)
    frame["m"] = np.select([x[:, 2] > 0.4, x[:, 2] < -0.4], ["high", "low"], "mid")
    frame.loc[rng.choice(rows, rows // 20, replace=False), "a"] = np.nan
    frame.loc[rng.choice(rows, rows // 25, replace=False), "z"] = np.nan
    frame.to_csv(path, index=False)
    return path


def tabular_spec(path: Path, tasks: dict[str, str], **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "dataset": {"name": "tabular", "params": {"path": str(path), "tasks": tasks, "inputs": list("abcd")}},
        "tasks": list(tasks),
        "training": {"epochs": 4, "batch_size": 32, "patience": 10},
        "capacities": {"subsets": [1.0], "singles": []},
    }
    spec.update(overrides)
    return spec


@dataclass
class TrainedJob:
    """A succeeded job and the networks its trainings produced (key -> weights and card)."""

    job: JobRecord
    trained: dict[str, TrainedNetwork]


def run_in_process(store: Store, spec: dict[str, Any]) -> TrainedJob:
    """Submit ``spec``, train every planned training here, store the results, solve: a succeeded job whose
    trainings kept no weights (as a search's trainings do)."""
    job = submit_job(store, spec)
    plan: Plan = job.plan  # type: ignore[assignment]
    specs = plan.specs()
    store.ensure_trainings(specs)
    store.link_job_trainings(job.id, list(specs))
    store.update_job(job.id, state=JobState.RUNNING)
    trained = {}
    for key, training in specs.items():
        trained[key] = train_network(training.model_copy(update={"threads": 1}))
        store.mark_training_running(key)
        store.finish_training(key, trained[key].result)
    result = search_result(job.id, job.spec, plan, store.job_trainings(job.id))
    return TrainedJob(store.update_job(job.id, state=JobState.SUCCEEDED, result=result), trained)


def keep(store: Store, key: str, trained: TrainedNetwork, folder: Path) -> CheckpointRecord:
    """Keep the weights of training ``key`` as a Tune trial does: a checkpoint folder, recorded in the
    store."""
    saved = save_checkpoint(folder / key / "checkpoint_000000", trained.card, trained.state_dict)
    uri = str(saved.path.parent)
    return store.record_checkpoint(key, uri=uri, size_bytes=saved.size, sha256=saved.sha256)


def keep_budget(store: Store, done: TrainedJob, budget: float, folder: Path) -> list[str]:
    """Keep the weights of the networks the job chose at ``budget`` (what a finalize leaves); their keys."""
    assert done.job.result is not None
    chosen = {(frozenset(n.tasks), n.capacity) for n in done.job.result.at(budget).networks}
    keys = [
        key
        for key, trained in done.trained.items()
        if (frozenset(trained.result.spec.tasks), trained.result.spec.capacity) in chosen
    ]
    for key in keys:
        keep(store, key, done.trained[key], folder)
    return keys


def write_smiles_csv(path: Path, rows: int = 240, seed: int = 0) -> Path:
    """Molecules written as SMILES (alkyl chains with an alcohol, amine or acid group, some rings) and two
    tasks read off their structure: ``carbons`` (regression, the carbon count) and ``acid`` (binary). The
    last rows carry unreadable SMILES (``invalid: drop`` leaves them out)."""
    rng = np.random.default_rng(seed)
    groups = {"O": 0, "N": 0, "C(=O)O": 1}
    smiles, carbons, acid = [], [], []
    for _ in range(rows):
        chain = int(rng.integers(1, 9))
        group = str(rng.choice(list(groups)))
        ring = "c1ccccc1" if rng.random() < 0.3 else ""
        smiles.append("C" * chain + ring + group)
        carbons.append(chain + (6 if ring else 0) + (1 if group == "C(=O)O" else 0))
        acid.append(float(groups[group]))
    frame = pd.DataFrame({"smiles": smiles, "carbons": carbons, "acid": acid})
    bad = pd.DataFrame({"smiles": ["C1CC", "not a molecule"], "carbons": [3, 1], "acid": [0.0, 0.0]})
    pd.concat([frame, bad], ignore_index=True).to_csv(path, index=False)
    return path
