"""POST /solve and `taskgroup solve` on sparse tables of many tasks: up to 64 tasks, time limits, optimality
gaps, HOA on promising groups only; clear errors beyond the limits."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from grouping import Candidate, LossTable, LossTableModel
from grouping.service import HOA_ALL_SUBSETS, SolveOptions, predicted_table, solve_tables


def sparse_table(n: int, networks: int, seed: int = 0, pairs: bool = False) -> LossTable:
    """Every single (full and half size) plus random groups of 2-5 tasks (or every pair), losses such that
    sharing helps some tasks and hurts others."""
    rng = random.Random(seed)
    tasks = [f"t{i:02d}" for i in range(n)]
    alone = {t: rng.uniform(0.5, 1.5) for t in tasks}
    rows: dict[Candidate, dict[str, float]] = {}
    for t in tasks:
        rows[Candidate((t,))] = {t: alone[t]}
        rows[Candidate((t,), 0.5)] = {t: alone[t] * 1.1}
    groups = (
        [(a, b) for i, a in enumerate(tasks) for b in tasks[i + 1 :]]
        if pairs
        else [tuple(sorted(rng.sample(tasks, rng.randint(2, 5)))) for _ in range(networks)]
    )
    for group in groups:
        rows[Candidate(group)] = {t: alone[t] * rng.uniform(0.8, 1.15) for t in group}
    return LossTable(tasks, [r for r in LossTable.from_losses(tasks, rows).rows.values()])


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 's.db'}",
        run_jobs=False,
        data_dir=tmp_path,
        runs_dir=tmp_path / "runs",
        solve_time_limit=20,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def post(client: TestClient, table: LossTable, **options: object) -> object:
    body = {"table": LossTableModel.from_tables(table).model_dump(mode="json"), **options}
    return client.post("/solve", json=body)


def test_a_sparse_table_of_40_tasks_is_solved_exactly(client: TestClient) -> None:
    table = sparse_table(40, 80, seed=1)  # the cheapest cover costs 10.5 SNT
    response = post(client, table, budgets="10.5:12.5")
    assert response.status_code == 200, response.text
    curve = response.json()["curve"]
    assert [g["budget"] for g in curve] == [10.5, 11.0, 11.5, 12.0, 12.5]
    assert all(g["optimality_gap"] == 0.0 for g in curve)
    assert all(g["cost"] <= g["budget"] for g in curve)
    direct = solve_tables(table, None, SolveOptions(budgets="10.5:12.5"))
    assert [g["selection_total"] for g in curve] == [g.selection_total for g in direct.curve]


def test_limits_are_clear_errors(client: TestClient) -> None:
    response = post(client, sparse_table(70, 50))
    assert response.status_code == 422
    assert "the table has 70 tasks; this service solves at most 64" in response.json()["detail"]
    for limit, message in ((0, "time_limit: Input should be greater than 0"), (90, "above this service's")):
        response = post(client, sparse_table(20, 40), time_limit=limit)
        assert response.status_code == 422 and message in response.json()["detail"], response.text
    response = post(client, sparse_table(25, 40), method="dp")
    assert response.status_code == 422 and "milp" in response.json()["detail"]


def test_a_time_limit_gives_a_valid_grouping_with_its_gap(client: TestClient) -> None:
    table = sparse_table(40, 2000, seed=4)
    response = post(client, table, budgets=[8, 9], time_limit=0.05)
    assert response.status_code == 200, response.text
    for grouping in response.json()["curve"]:
        assert grouping["cost"] <= grouping["budget"] and grouping["optimality_gap"] >= 0
        served = {t for net in grouping["networks"] for t in net["serves"]}
        assert served == set(table.tasks)


def test_hoa_on_many_tasks_predicts_only_promising_groups() -> None:
    """Above HOA_ALL_SUBSETS tasks HOA never lists the 2^n subsets: it predicts the groups the pairs'
    affinity makes promising (and every prediction equals the full HOA's for the same network)."""
    n = HOA_ALL_SUBSETS + 4
    table = sparse_table(n, 0, seed=2, pairs=True)
    predicted = predicted_table(table)
    larger = [c for c in predicted if c.size >= 3]
    assert larger and all(predicted[c].predicted for c in larger)
    assert len(predicted) < 2**n / 50
    curve = solve_tables(table, None, SolveOptions(budgets=[4], hoa=True))
    assert curve.curve[0].optimality_gap == 0.0


def test_the_cli_takes_the_same_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from api.cli import main

    path = tmp_path / "many.json"
    path.write_text(LossTableModel.from_tables(sparse_table(40, 80, seed=1)).model_dump_json())
    assert main(["solve", str(path), "--budgets", "11,12", "--method", "milp", "--format", "json"]) == 0
    curve = json.loads(capsys.readouterr().out)["curve"]
    assert [(g["budget"], g["optimality_gap"]) for g in curve] == [(11.0, 0.0), (12.0, 0.0)]
    assert main(["solve", str(path), "--method", "dp"]) == 2
    assert "milp" in capsys.readouterr().err
