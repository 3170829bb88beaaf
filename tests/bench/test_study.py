"""bench/study.py end to end on a real local Ray: the `planted` part (known answer), resume, refusals."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from search.store import open_store

pytestmark = [pytest.mark.ray, pytest.mark.slow]

STUDY = Path(__file__).resolve().parents[2] / "bench" / "study.py"


def load_study() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_study", STUDY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_study"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def finished(db: str) -> dict[str, Any]:
    """Every training of every job in the store, with when it finished."""
    store = open_store(db)
    return {
        t.training.key: t.training.finished_at
        for job in store.list_jobs()
        for t in store.job_trainings(job.id)
    }


def test_planted_part_finds_the_known_grouping_and_a_rerun_trains_nothing(
    ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = load_study()
    db = f"sqlite:///{tmp_path / 'study.db'}"
    out = tmp_path / "out"
    argv = ["--part", "planted", "--db", db, "--out", str(out), "--runs-dir", str(tmp_path / "runs")]
    assert study.main(argv) == 0
    data = json.loads((out / "study" / "planted.json").read_text())

    # the planted answer: {a1, a2} + {b1} at 2 SNT, on the mean of two seeds
    two = next(r for r in data["curves"]["optimal"] if r["budget"] == 2.0)
    assert sorted(n["tasks"] for n in two["networks"]) == [["a1", "a2"], ["b1"]]
    assert data["seeds"] == 2 and set(data["seed_spread"]) == {"1.0", "1.5", "2.0", "2.5", "3.0"}
    # HOA's singles, half singles and pairs are exhaustive seed 0's trainings, reused; ESA's are short (their
    # wall seconds are measured, not asserted: on a shared machine they are noise at this size)
    assert data["trainings"]["hoa"] and all(t["reused"] for t in data["trainings"]["hoa"])
    for fidelity in (0.1, 0.2):
        assert {t["fidelity"] for t in data["trainings"][f"esa {fidelity:g}"]} == {fidelity}
    assert set(data["compute"]) >= {"exhaustive seed 0", "hoa", "esa 0.2", "esa 0.1"}
    # at every budget the test oracle scores at most what the validation choice scores
    assert all(g <= 1e-9 for g in data["gaps_percent"]["test oracle"].values() if g is not None)
    assert data["affinity"]["a1"]["a2"] > 0 > data["affinity"]["a1"]["b1"]
    for name in ("curve", "affinity", "groupings"):
        assert (out / "images" / f"study-planted-{name}.png").read_bytes().startswith(b"\x89PNG")

    # a rerun reads every job back: nothing retrained, the same curves, the cost of the first run kept
    before = finished(db)
    assert study.main(argv) == 0
    again = json.loads((out / "study" / "planted.json").read_text())
    assert finished(db) == before
    assert again["curves"] == data["curves"] and again["job_wall_seconds"] == data["job_wall_seconds"]

    capsys.readouterr()
    assert study.main([*argv, "--markdown"]) == 0
    page = capsys.readouterr().out
    assert "| budget (SNT) | optimal | hoa | esa 0.2 | esa 0.1 | test oracle |" in page
    assert "a1a2 + b1" in page.replace(",", "")  # the chosen grouping, written out


def test_a_stored_job_with_other_settings_is_refused(ray_session: None, tmp_path: Path) -> None:
    study = load_study()
    store = open_store(f"sqlite:///{tmp_path / 'study.db'}")
    spec = {"dataset": {"name": "planted", "params": {"groups": [2, 1]}}, "tasks": ["a1", "a2", "b1"]}
    first = study._run(store, "study-x", {**spec, "training": {"epochs": 2}}, runs_dir=tmp_path / "runs")
    assert first.result.curve
    with pytest.raises(SystemExit, match="study-x in the store was run with other settings"):
        study._run(store, "study-x", {**spec, "training": {"epochs": 3}}, runs_dir=tmp_path / "runs")


def test_markdown_without_a_run_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = load_study()
    with pytest.raises(SystemExit):
        study.main(["--part", "sarcos", "--markdown", "--out", str(tmp_path)])
    assert "run the part first" in capsys.readouterr().err


def test_a_spec_the_product_refuses_is_a_one_line_exit(tmp_path: Path) -> None:
    study = load_study()
    store = open_store(f"sqlite:///{tmp_path / 'study.db'}")
    tasks = {"y1": "regression", "y2": "regression"}
    missing = {"name": "tabular", "params": {"path": str(tmp_path / "none.csv"), "tasks": tasks}}
    with pytest.raises(SystemExit, match=r"job study-y: .*none\.csv' not found"):
        study._run(store, "study-y", {"dataset": missing, "tasks": list(tasks)})
