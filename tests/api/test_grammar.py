"""The CLI and the HTTP API read budgets and weights with one grammar (grouping.budgets, grouping.weights):
the same strings give the same budget curves, and the same bad strings the same complaints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from api.settings import Settings
from grouping import LossTableModel, read_loss_tables

ROOT = Path(__file__).resolve().parents[2]
LOSSES = ROOT / "examples" / "losses.txt"
SCORING = ROOT / "examples" / "losses_test.txt"
BUDGETS = ["1:3", "1:2:0.25", "1,2.5,4", "2", " 3 "]
WEIGHTS = [None, "s=2,d=1", '{"s": 2, "d": 1}', "k=0.5, e=3"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("grammar")
    settings = Settings(database_url=f"sqlite:///{tmp / 'g.db'}", run_jobs=False, data_dir=tmp, runs_dir=tmp)
    with TestClient(create_app(settings)) as c:
        yield c


def cli_curve(capsys: pytest.CaptureFixture[str], budgets: str, weights: str | None) -> dict:
    argv = ["solve", str(LOSSES), "--scoring", str(SCORING), "--budgets", budgets, "--format", "json"]
    code = main(argv + (["--weights", weights] if weights is not None else []))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("budgets", BUDGETS)
def test_cli_form_and_json_read_the_same_strings_the_same_way(
    client: TestClient, capsys: pytest.CaptureFixture[str], budgets: str, weights: str | None
) -> None:
    expected = cli_curve(capsys, budgets, weights)
    form = {"budgets": budgets, **({"weights": weights} if weights is not None else {})}
    files = {"file": ("losses.txt", LOSSES.read_bytes()), "scoring": ("test.txt", SCORING.read_bytes())}
    by_form = client.post("/solve", files=files, data=form)
    assert by_form.status_code == 200, by_form.text
    tables = read_loss_tables(LOSSES)
    table = LossTableModel.from_tables(tables.selection, read_loss_tables(SCORING).selection)
    by_json = client.post("/solve", json={"table": table.model_dump(mode="json"), **form})
    assert by_json.status_code == 200, by_json.text
    assert by_form.json() == by_json.json() == expected


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("budgets", "1:x", "expected START:STOP[:STEP] like 1:5:0.5"),
        ("budgets", "1:1e9:0.001", "the sweep 1:1e+09:0.001 has more than 10000 budgets"),
        ("budgets", "-2", "every budget must be a finite number of SNT > 0"),
        ("weights", "s", "expected TASK=WEIGHT pairs like s=2,d=1 or a JSON object, got 's'"),
        ("weights", "s=-1", "the weight of 's' must be a finite number >= 0"),
        ("weights", "{oops", "not valid JSON"),
    ],
)
def test_bad_strings_get_the_same_complaint_everywhere(
    client: TestClient, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    code = main(["solve", str(LOSSES), f"--{option}", value])
    err = capsys.readouterr().err
    assert code == 2 and f"--{option}: {message}" in err
    files = {"file": ("losses.txt", LOSSES.read_bytes())}
    response = client.post("/solve", files=files, data={option: value})
    assert response.status_code == 422 and f"{option}: {message}" in response.json()["detail"]
