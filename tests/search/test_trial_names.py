"""Tune trials named by the network they train (search.trial_names): the names, their folder names, and a
real run on the session's Ray whose trial folders and trial actors carry them."""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from search.trial_names import DIRNAME_CHARS, network_name, safe_dirname, trial_dirname, trial_name


def _trial(spec: dict[str, Any], trial_id: str = "3f2a1_00004") -> Any:
    return SimpleNamespace(config={"training": {"key": "k", "spec": spec}}, trial_id=trial_id)


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ({"tasks": ["s", "d", "n"], "fidelity": 0.2, "seed": 0}, "sdn fidelity 0.2 seed 0"),
        ({"tasks": ["s"], "capacity": 0.5, "fidelity": 1.0, "seed": 3}, "s capacity 0.5 fidelity 1 seed 3"),
        ({"tasks": ["a1", "b2"], "capacity": 1.0, "fidelity": 0.25}, "a1,b2 fidelity 0.25 seed 0"),
        ({"tasks": ["seg", "depth"], "capacity": 2.0, "seed": 1}, "seg,depth capacity 2 fidelity 1 seed 1"),
    ],
)
def test_a_training_is_named_by_its_network(spec: dict[str, Any], name: str) -> None:
    assert network_name(spec) == name
    assert trial_name(_trial(spec)) == name


def test_a_foreign_config_keeps_tunes_name() -> None:
    trial = SimpleNamespace(config={"lr": 0.1}, trial_id="x")
    assert trial_name(trial) == str(trial)


@pytest.mark.parametrize(
    "tasks",
    [["a/b", "..", "c d"], ["é", "ü"], ["-x", ".hidden"], ["t" * 300], ["a\\b", "a:b", "a*b?"]],
)
def test_folder_names_are_safe_on_every_file_system(tasks: list[str], tmp_path: Path) -> None:
    dirname = trial_dirname(_trial({"tasks": tasks, "fidelity": 0.5}))
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", dirname), dirname
    assert dirname.endswith("_3f2a1_00004")
    assert len(dirname) <= DIRNAME_CHARS + 1 + len("3f2a1_00004")
    (tmp_path / dirname).mkdir()  # one folder, right here: no separator, no parent reference
    assert [p.name for p in tmp_path.iterdir()] == [dirname]


def test_safe_dirname_is_never_empty() -> None:
    assert safe_dirname("///") == "trial"
    assert safe_dirname("sdn fidelity 0.2 seed 0") == "sdn_fidelity_0.2_seed_0"


def _trial_actor_reprs(since_ms: float) -> list[str]:
    """Repr names Ray's GCS holds for the Tune trial actors started since ``since_ms`` (read without the
    dashboard, which the session's Ray does not run)."""
    from ray._private.state import state
    from ray.core.generated import gcs_pb2

    accessor = state._connect_and_get_accessor()
    actors = [gcs_pb2.ActorTableData.FromString(raw) for raw in accessor.get_actor_table(None, None)]
    return [a.repr_name for a in actors if "ImplicitFunc" in a.class_name and a.start_time >= since_ms]


@pytest.mark.ray
@pytest.mark.slow
def test_a_run_names_its_trials_and_their_actors(ray_session: None, tmp_path: Path) -> None:
    from search.ray_runner import TuneRunner
    from search.run import run_job
    from search.store import JobState, open_store
    from search.submit import submit_job

    store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    spec = {"dataset": {"name": "planted", "params": {"groups": [2]}}, "tasks": ["a1", "a2"]}
    job = submit_job(store, {**spec, "training": {"epochs": 1}})
    since = time.time() * 1000 - 1000
    final = run_job(store, job.id, runs_dir=tmp_path / "runs", runner=TuneRunner())
    assert final.state == JobState.SUCCEEDED, final.error
    expected = {
        "a1,a2 fidelity 1 seed 0",
        "a1 fidelity 1 seed 0",
        "a2 fidelity 1 seed 0",
        "a1 capacity 0.5 fidelity 1 seed 0",
        "a2 capacity 0.5 fidelity 1 seed 0",
    }
    folders = [p.name for p in (tmp_path / "runs").rglob("*") if p.is_dir() and "_seed_" in p.name]
    assert {re.sub(r"_[0-9a-f]+_\d{5}$", "", f) for f in folders} == {safe_dirname(n) for n in expected}
    reprs = _trial_actor_reprs(since)
    assert reprs and set(reprs) <= expected  # each trial actor shows the network it was created for
