"""The HTTP API without Ray: validation, errors, auth, paths, /solve, /datasets, /healthz, the job manager.

The app runs with ``run_jobs=False`` (jobs are queued in a real SQLite store, no driver starts), except in
the manager tests, which start real subprocesses from small stand-in driver scripts to check the queue,
concurrency, crash handling and shutdown without paying for Ray. The end-to-end tests with the real
driver and Ray are in ``test_jobs_e2e.py``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from api.app import create_app
from api.routers.paths import confine_path, path_params
from api.settings import ENV_VARS, Settings
from grouping import FORMATS, LossTable, LossTableModel, budget_curve, read_loss_tables
from grouping.candidates import Candidate
from grouping.table import TableRow
from search.plan import planned_size
from search.records import JobResult
from search.spec import MAX_TASKS, JobSpec
from search.store import JobState, open_store
from tests.prometheus import scrape
from tests.results import make_result
from workers.datasets import DATASETS, Dataset, TaskInfo, TaskKind
from workers.spec import DatasetRef, TrainingResult, TrainingSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ONE_ROW = {"tasks": ["a"], "rows": [{"tasks": ["a"], "losses": {"a": 1}}]}
PLANTED = {"dataset": {"name": "planted"}, "tasks": ["a1", "a2", "b1", "b2"], "training": {"epochs": 3}}


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'api.db'}",
        "run_jobs": False,
        "data_dir": tmp_path / "data",
        "runs_dir": tmp_path / "runs",
    }
    values.update(overrides)
    (tmp_path / "data").mkdir(exist_ok=True)
    return Settings(**values)


@contextmanager
def running_app(tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path, **overrides))) as client:
        yield client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with running_app(tmp_path) as c:
        yield c


# ---------------------------------------------------------------------- submitting and reading jobs


def test_submit_returns_202_with_links_and_the_planned_size(client: TestClient) -> None:
    response = client.post("/jobs", json=PLANTED)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "queued"
    # exhaustive over 4 tasks: 2^4 - 1 subsets at full size + 4 half-size singles
    assert body["trainings_planned"] == 2**4 - 1 + 4 == planned_size(JobSpec.model_validate(PLANTED))
    job_url = body["links"]["self"]
    assert response.headers["location"] == job_url
    assert job_url.endswith(f"/jobs/{body['id']}")
    for name in ("trainings", "result", "grouping"):
        assert body["links"][name] == f"{job_url}/{name}"

    detail = client.get(f"/jobs/{body['id']}").json()
    assert detail["state"] == "queued" and detail["queue_position"] == 1
    assert detail["progress"]["total"] == 19 and detail["progress"]["pending"] == 19
    assert detail["budgets"] == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    assert detail["spec"]["tasks"] == PLANTED["tasks"] and detail["started_at"] is None


def test_list_is_newest_first_filtered_and_paginated(client: TestClient) -> None:
    ids = [client.post("/jobs", json={**PLANTED, "name": f"job {i}"}).json()["id"] for i in range(5)]
    client.delete(f"/jobs/{ids[1]}")
    page = client.get("/jobs", params={"limit": 2}).json()
    assert page["total"] == 5 and [j["id"] for j in page["items"]] == ids[::-1][:2]
    seen = []
    url: str | None = "/jobs?limit=2"
    while url:
        page = client.get(url).json()
        seen += [j["id"] for j in page["items"]]
        url = page["next"]
    assert seen == ids[::-1]
    cancelled = client.get("/jobs", params={"state": "cancelled"}).json()
    assert cancelled["total"] == 1 and cancelled["items"][0]["id"] == ids[1]
    queued = client.get("/jobs", params={"state": "queued"}).json()
    assert queued["total"] == 4 and ids[1] not in [j["id"] for j in queued["items"]]
    assert client.get("/jobs", params={"state": "nope"}).status_code == 422
    assert client.get("/jobs", params={"limit": 0}).status_code == 422


def test_queue_positions_follow_submission_order(client: TestClient) -> None:
    ids = [client.post("/jobs", json=PLANTED).json()["id"] for _ in range(3)]
    assert [client.get(f"/jobs/{i}").json()["queue_position"] for i in ids] == [1, 2, 3]
    client.delete(f"/jobs/{ids[0]}")
    assert [client.get(f"/jobs/{i}").json()["queue_position"] for i in ids] == [None, 1, 2]


def test_unknown_job_is_404_everywhere(client: TestClient) -> None:
    for path in ("/jobs/nope", "/jobs/nope/trainings", "/jobs/nope/result", "/jobs/nope/grouping?budget=1"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "job nope not found" in response.json()["detail"]
    assert client.delete("/jobs/nope").status_code == 404
    assert client.get("/jobs/" + "x" * 300).status_code == 404


# ---------------------------------------------------------------------- bad input: always a 4xx that says why


@pytest.mark.parametrize(
    ("body", "content_type", "code", "expected"),
    [
        (b'{"dataset": ', "application/json", 400, "not valid JSON"),
        (b"[1, 2]", "application/json", 422, "not a JSON object"),
        (b"", "application/json", 422, "body is missing"),
        (b"dataset=planted", "application/x-www-form-urlencoded", 422, "Content-Type: application/json"),
    ],
)
def test_malformed_bodies(
    client: TestClient, body: bytes, content_type: str, code: int, expected: str
) -> None:
    response = client.post("/jobs", content=body, headers={"content-type": content_type})
    assert response.status_code == code
    assert expected in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"colour": "red"}, "colour: unknown field"),
        ({"dataset": {"name": "planted", "colour": 1}}, "dataset.colour: unknown field"),
        ({"dataset": {"name": "mnist"}}, "unknown dataset 'mnist'; choose one of"),
        ({"tasks": ["a1", "zz"]}, "['zz'] are not tasks of dataset 'planted'"),
        ({"tasks": ["a1", "a1"]}, "duplicate tasks"),
        ({"tasks": [f"t{i}" for i in range(MAX_TASKS + 1)]}, f"at most {MAX_TASKS} items"),
        ({"approximation": "magic"}, "approximation: Input should be"),
        ({"budgets": [None, None]}, "budgets: expected a list of numbers"),
        ({"budgets": "1:x:2"}, "budgets"),
        ({"budgets": "1:1e9:0.001"}, "budgets: the sweep 1:1e+09:0.001 has more than 10000 budgets"),
        ({"budgets": "1:inf"}, "budgets: budget range 1:inf:0.5 must be finite numbers"),
        ({"budgets": [0.25]}, "below the cheapest selection"),
        ({"dataset": {"name": "planted", "params": {"groups": []}}}, "groups"),
        ({"resources": {"cpus": -1}}, "resources.cpus"),
        ({"training": {"epochs": 0}}, "training.epochs"),
        ({"approximation_options": {"groups": [["a1", "zz"]]}}, "the group ['a1', 'zz'] names 'zz'"),
        ({"approximation_options": {"max_group_size": 0}}, "max_group_size"),
    ],
)
def test_bad_specs_are_422_with_the_field_named(client: TestClient, change: dict, expected: str) -> None:
    response = client.post("/jobs", json={**PLANTED, **change})
    assert response.status_code == 422, response.text
    assert expected in response.json()["detail"]
    assert client.get("/jobs").json()["total"] == 0


@pytest.mark.parametrize(
    ("training", "loc", "expected"),
    [
        (
            {"weighting": "no-such-method"},
            ["body", "training", "weighting"],
            "training.weighting: unknown method 'no-such-method'; choose one of dtp, dwa, equal",
        ),
        (
            {"weighting": "gradnorm", "weighting_options": {"alpha": "high"}},
            ["body", "training", "weighting_options"],
            "training.weighting_options: weighting_options for 'gradnorm': alpha:",
        ),
    ],
)
def test_a_weighting_the_trainer_would_refuse_is_422_before_the_job_exists(
    client: TestClient, training: dict, loc: list[str], expected: str
) -> None:
    """It used to answer 202 and fail in every Ray trial."""
    response = client.post("/jobs", json={**PLANTED, "training": training})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"].startswith(expected)
    assert [e["loc"] for e in body["errors"]] == [loc]
    assert client.get("/jobs").json()["total"] == 0


def test_capacities_the_model_cannot_build_are_422(client: TestClient) -> None:
    for capacities, expected in (
        ({"subsets": [1.0], "singles": [0.001]}, "capacities: capacity 0.001 cannot be built"),
        ({"subsets": [1.0], "singles": [0.00001]}, "have a common unit of 1e-05 SNT"),
    ):
        response = client.post("/jobs", json={**PLANTED, "capacities": capacities})
        assert response.status_code == 422 and expected in response.json()["detail"]
    assert client.get("/jobs").json()["total"] == 0


def test_a_plan_too_large_is_refused_before_queueing(client: TestClient) -> None:
    spec = {
        "dataset": {"name": "planted", "params": {"groups": [6, 5]}},
        "tasks": [f"{g}{i}" for g, n in (("a", 6), ("b", 5)) for i in range(1, n + 1)],
    }
    response = client.post("/jobs", json=spec)
    assert response.status_code == 422
    assert "allow_large" in response.json()["detail"]


def test_oversized_bodies_are_413_with_or_without_content_length(tmp_path: Path) -> None:
    with running_app(tmp_path, max_upload_bytes=2048) as client:
        big = json.dumps({**PLANTED, "name": "x" * 4000}).encode()
        response = client.post("/jobs", content=big, headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert "TASKGROUP_MAX_UPLOAD_BYTES" in response.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
            for i in range(0, len(big), 512):
                yield big[i : i + 512]

        response = client.post("/jobs", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413
        files = {"file": ("big.txt", b"0.1\t0.2\n" * 1000)}
        assert client.post("/solve", files=files).status_code == 413
        assert client.post("/jobs", json=PLANTED).status_code == 202  # small bodies still pass


def test_wrong_methods_get_405_with_every_allowed_method(client: TestClient) -> None:
    response = client.put("/jobs/abc")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
    assert client.patch("/jobs").headers["allow"] == "GET, POST"


# ---------------------------------------------------------------------- dataset paths (no traversal)


class _FileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    seed: int = 0


class _FileDataset(Dataset):
    """A dataset read from a file, standing in for ``tabular`` (its Params has a ``path``)."""

    name: ClassVar[str] = "file-probe"
    Params = _FileParams
    input_kind: ClassVar[str] = "vector"  # type: ignore[assignment]

    def tasks(self) -> list[TaskInfo]:
        return [TaskInfo(name=n, kind=TaskKind.REGRESSION, loss="mse", metric="r2") for n in ("y1", "y2")]

    def load(self) -> dict:  # pragma: no cover - never trained here
        raise NotImplementedError

    def input_shape(self) -> tuple[int, ...]:  # what a submission builds the model from
        return (3,)

    def fingerprint(self) -> str:
        path = Path(self.params.path)  # type: ignore[attr-defined]
        if not path.is_file():
            raise ValueError(f"dataset.params.path: no such file {path}")
        return path.read_text()[:16]


@pytest.fixture
def file_dataset(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(DATASETS, _FileDataset.name, _FileDataset)
    return _FileDataset.name


def test_path_params_are_found_by_name_and_type() -> None:
    class Params(BaseModel):
        path: str
        cache_dir: str | None = None
        data_file: Path | None = None
        labels: list[str] = []
        seed: int = 0

    assert path_params(Params) == ["path", "cache_dir", "data_file"]


def test_confine_path_accepts_inside_and_refuses_outside(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    outside = tmp_path / "secret.csv"
    outside.write_text("x")
    (data / "link.csv").symlink_to(outside)
    (data / "sub" / "ok.csv").write_text("y")
    assert confine_path("sub/ok.csv", data, "f") == str(data / "sub" / "ok.csv")
    assert confine_path("sub/../sub/ok.csv", data, "f") == str(data / "sub" / "ok.csv")
    assert confine_path(str(data / "new.csv"), data, "f") == str(data / "new.csv")
    for bad in ("../secret.csv", str(outside), "link.csv", "sub/../../secret.csv", "/etc/passwd", "~/x"):
        with pytest.raises(ValueError, match="outside the service's data directory"):
            confine_path(bad, data, "f")
    for bad in ("", "   ", "a\x00b"):
        with pytest.raises(ValueError):
            confine_path(bad, data, "f")


def test_job_paths_outside_the_data_dir_are_422(
    client: TestClient, tmp_path: Path, file_dataset: str
) -> None:
    data = tmp_path / "data"
    (data / "mine.csv").write_text("y1,y2\n")
    (tmp_path / "other.csv").write_text("y1,y2\n")
    (data / "escape.csv").symlink_to(tmp_path / "other.csv")
    spec = {"tasks": ["y1", "y2"], "training": {"epochs": 1}}
    for path in (
        "../other.csv",
        str(tmp_path / "other.csv"),
        "escape.csv",
        "/etc/hostname",
        "../../../../etc",
    ):
        response = client.post(
            "/jobs", json={**spec, "dataset": {"name": file_dataset, "params": {"path": path}}}
        )
        assert response.status_code == 422, path
        detail = response.json()["detail"]
        assert "dataset.params.path" in detail and "outside the service's data directory" in detail
        assert str(tmp_path) not in detail.replace(path, "")  # says nothing about what lies outside
    response = client.post(
        "/jobs", json={**spec, "dataset": {"name": file_dataset, "params": {"path": "mine.csv"}}}
    )
    assert response.status_code == 202, response.text
    stored = client.get(f"/jobs/{response.json()['id']}").json()["spec"]
    assert stored["dataset"]["params"]["path"] == str(data.resolve() / "mine.csv")
    missing = {"name": file_dataset, "params": {"path": "absent.csv"}}
    response = client.post("/jobs", json={**spec, "dataset": missing})
    assert response.status_code == 422 and "no such file" in response.json()["detail"]


@pytest.mark.skipif("tabular" not in DATASETS, reason="the tabular dataset is not registered yet")
def test_tabular_paths_are_confined(client: TestClient) -> None:
    spec = {"dataset": {"name": "tabular", "params": {"path": "../../etc/passwd"}}, "tasks": ["a", "b"]}
    response = client.post("/jobs", json=spec)
    assert response.status_code == 422
    assert "outside the service's data directory" in response.json()["detail"]


# ---------------------------------------------------------------------- results, groupings, trainings


def _random_table(tasks: list[str], rng: random.Random, capacities: tuple[float, ...] = (1.0,)) -> LossTable:
    rows = []
    for mask in range(1, 2 ** len(tasks)):
        members = tuple(t for i, t in enumerate(tasks) if mask >> i & 1)
        for capacity in capacities if len(members) == 1 else (1.0,):
            rows.append(TableRow(Candidate(members, capacity), {t: rng.uniform(0.1, 1.0) for t in members}))
    return LossTable(tasks, rows)


def _succeed(store_url: str, job_id: str, result: JobResult) -> None:
    store = open_store(store_url)
    try:
        store.update_job(job_id, state=JobState.RUNNING)
        store.update_job(job_id, state=JobState.SUCCEEDED, result=result)
    finally:
        store.close()


def test_result_and_grouping_download(client: TestClient, tmp_path: Path) -> None:
    job_id = client.post("/jobs", json=PLANTED).json()["id"]
    response = client.get(f"/jobs/{job_id}/result")
    assert response.status_code == 404
    assert response.json()["detail"].startswith(f"job {job_id} has no result: it is queued (0/19")
    assert client.get(f"/jobs/{job_id}/grouping", params={"budget": 2}).status_code == 404

    table = _random_table(PLANTED["tasks"], random.Random(3), capacities=(1.0, 0.5))
    curve = budget_curve(table, budgets=[1, 1.5, 2, 2.5]).model_dump(mode="json")
    stored = make_result(job_id, table, budgets=[1, 1.5, 2, 2.5], spec=PLANTED)
    _succeed(str(client.app.state.settings.database_url), job_id, stored)

    result = client.get(f"/jobs/{job_id}/result").json()
    assert result["curve"] == curve["curve"] and result["job_id"] == job_id
    assert client.get(f"/jobs/{job_id}").json()["budgets"] == [1.0, 1.5, 2.0, 2.5]
    for record in curve["curve"]:
        budget = record["budget"]
        response = client.get(f"/jobs/{job_id}/grouping", params={"budget": budget + 1e-12})
        assert response.status_code == 200
        assert response.json() == record
        disposition = response.headers["content-disposition"]
        assert disposition == f'attachment; filename="job-{job_id}-grouping-{budget:g}snt.json"'
    for bad in (3, 1.25, 0.999):
        response = client.get(f"/jobs/{job_id}/grouping", params={"budget": bad})
        assert response.status_code == 422
        assert response.json()["detail"].endswith("choose one of: 1, 1.5, 2, 2.5")
    for bad in ("abc", "nan", "inf", "-1", "0"):
        assert client.get(f"/jobs/{job_id}/grouping", params={"budget": bad}).status_code == 422
    assert client.get(f"/jobs/{job_id}/grouping").status_code == 422
    response = client.delete(f"/jobs/{job_id}")
    assert response.status_code == 409 and "already succeeded" in response.json()["detail"]


@contextmanager
def sql_statements(store: Any) -> Iterator[list[str]]:
    """Every SQL statement ``store`` sends while the block runs (its engine's cursor executions)."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(store._engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store._engine, "before_cursor_execute", record)


def test_listing_jobs_never_loads_their_results_or_plans(client: TestClient) -> None:
    """A page of jobs reads the summary columns only: one SELECT for the page (and one COUNT), no result or
    plan column, no lazy load per job; one job's detail does read them (the check can see a result)."""
    table = _random_table(PLANTED["tasks"], random.Random(5))
    ids = [client.post("/jobs", json=PLANTED).json()["id"] for _ in range(3)]
    url = str(client.app.state.settings.database_url)
    for job_id in ids:
        _succeed(url, job_id, make_result(job_id, table, spec=PLANTED))
    store = client.app.state.store
    with sql_statements(store) as listing:
        page = client.get("/jobs", params={"limit": 50})
    assert page.status_code == 200 and {j["id"] for j in page.json()["items"]} == set(ids)
    selects = [s for s in listing if s.upper().startswith("SELECT")]
    assert len(selects) == 2, selects  # the count and the page: no per-job load
    for statement in selects:
        assert "jobs.result" not in statement and "jobs.plan" not in statement, statement
    with sql_statements(store) as detail:
        assert client.get(f"/jobs/{ids[0]}").status_code == 200
    assert any("jobs.result" in s for s in detail)


def test_failed_job_result_says_why(client: TestClient) -> None:
    job_id = client.post("/jobs", json=PLANTED).json()["id"]
    store = client.app.state.store
    store.update_job(job_id, state=JobState.RUNNING)
    store.update_job(job_id, state=JobState.FAILED, error="3 trainings did not finish")
    response = client.get(f"/jobs/{job_id}/result")
    assert response.status_code == 404
    assert (
        response.json()["detail"] == f"job {job_id} has no result: it is failed: 3 trainings did not finish"
    )
    assert client.get(f"/jobs/{job_id}").json()["error"] == "3 trainings did not finish"


def test_trainings_show_state_and_losses(client: TestClient) -> None:
    job_id = client.post("/jobs", json=PLANTED).json()["id"]
    assert client.get(f"/jobs/{job_id}/trainings").json()["total"] == 0
    store = client.app.state.store
    planted = DatasetRef(name="planted")
    specs = {
        "k-a": TrainingSpec(dataset=planted, tasks=["a1"], capacity=0.5, fidelity=1.0, seed=0),
        "k-b": TrainingSpec(dataset=planted, tasks=["a1", "b1"], capacity=1.0, fidelity=0.2, seed=1),
        "k-c": TrainingSpec(dataset=planted, tasks=["b2"], capacity=1.0, fidelity=1.0, seed=0),
    }
    store.ensure_trainings(specs)
    store.mark_training_running("k-a")
    store.finish_training(
        "k-a",
        TrainingResult(
            spec=specs["k-a"],
            selection={"a1": 0.5},
            scoring={"a1": 0.6},
            curve=[],
            best_epoch=7,
            epochs_run=7,
            wall_seconds=1.5,
            flops_per_sample=1.0,
            parameters=1,
            device="cpu",
        ),
    )
    store.link_job_trainings(job_id, ["k-a", "k-b", "k-c"], reused={"k-a"})
    store.mark_training_running("k-b")
    store.fail_training("k-b", "boom")
    body = client.get(f"/jobs/{job_id}/trainings").json()
    assert body["total"] == 3 and body["counts"] == {"pending": 1, "running": 0, "succeeded": 1, "failed": 1}
    first, second, third = body["items"]
    assert first["key"] == "k-a" and first["reused"] and first["state"] == "succeeded"
    assert first["selection"] == {"a1": 0.5} and first["scoring"] == {"a1": 0.6} and first["epochs_run"] == 7
    assert first["capacity"] == 0.5 and first["wall_seconds"] == 1.5 and first["device"] == "cpu"
    assert second["state"] == "failed" and second["error"] == "boom" and second["fidelity"] == 0.2
    assert second["seed"] == 1 and not second["reused"] and second["attempts"] == 1
    assert third["state"] == "pending" and third["selection"] is None
    failed = client.get(f"/jobs/{job_id}/trainings", params={"state": "failed"}).json()
    assert [t["key"] for t in failed["items"]] == ["k-b"] and failed["total"] == 3


def test_cancel_a_queued_job_at_once_then_409(client: TestClient) -> None:
    job_id = client.post("/jobs", json=PLANTED).json()["id"]
    response = client.delete(f"/jobs/{job_id}")
    assert response.status_code == 202
    assert response.json()["state"] == "cancelled" and response.json()["finished_at"] is not None
    again = client.delete(f"/jobs/{job_id}")
    assert (
        again.status_code == 409
        and again.json()["detail"] == f"job {job_id} is already cancelled: nothing to cancel"
    )
    assert "it is cancelled" in client.get(f"/jobs/{job_id}/result").json()["detail"]


# ---------------------------------------------------------------------- auth


def _routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            out.append((method.upper(), path.replace("{job_id}", "abc")))
    return out


def test_auth_off_lets_everything_through(client: TestClient) -> None:
    assert client.get("/jobs").status_code == 200
    assert client.get("/datasets").status_code == 200


def test_auth_on_every_endpoint_but_healthz_needs_the_token(tmp_path: Path) -> None:
    with running_app(tmp_path, api_token="s3cret") as client:
        routes = _routes(client.app)
        assert len(routes) >= 9
        for method, path in routes:
            anonymous = client.request(method, path)
            wrong = client.request(method, path, headers={"Authorization": "Bearer nope"})
            if path == "/healthz":
                assert anonymous.status_code == 200
                continue
            assert anonymous.status_code == 401, (method, path)
            assert anonymous.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer" in anonymous.json()["detail"]
            assert wrong.status_code == 401 and "wrong" in wrong.json()["detail"]
        good = {"Authorization": "Bearer s3cret"}
        assert client.get("/jobs", headers=good).status_code == 200
        job = client.post("/jobs", json=PLANTED, headers=good)
        assert job.status_code == 202
        assert client.get(f"/jobs/{job.json()['id']}", headers=good).status_code == 200
        assert client.get("/jobs", headers={"Authorization": "Basic czNjcmV0"}).status_code == 401
        assert client.get("/openapi.json").status_code == 200  # the schema is public, the data is not


# ---------------------------------------------------------------------- /solve


def _solve_json(client: TestClient, table: LossTable, **options: Any) -> Any:
    model = LossTableModel.from_tables(table)
    return client.post("/solve", json={"table": model.model_dump(mode="json"), **options})


def test_solve_json_equals_the_solver(client: TestClient) -> None:
    rng = random.Random(11)
    tasks = ["p", "q", "r", "s"]
    selection = _random_table(tasks, rng, capacities=(1.0, 0.5))
    scoring = _random_table(tasks, rng, capacities=(1.0, 0.5))
    model = LossTableModel.from_tables(selection, scoring)
    body = {"table": model.model_dump(mode="json"), "budgets": "1:4:0.5", "weights": {"p": 2.0}}
    response = client.post("/solve", json=body)
    assert response.status_code == 200, response.text
    expected = budget_curve(
        selection, budgets=[1, 1.5, 2, 2.5, 3, 3.5, 4], scoring=scoring, weights={"p": 2.0}
    ).model_dump(mode="json")
    assert response.json() == expected
    assert all(r["scoring_total"] is not None for r in response.json()["curve"])


@pytest.mark.skipif(not (EXAMPLES / "losses.txt").is_file(), reason="examples/losses.txt not shipped yet")
def test_solve_paper_upload_equals_the_file_read_locally(client: TestClient) -> None:
    files = {
        "file": ("losses.txt", (EXAMPLES / "losses.txt").read_bytes()),
        "scoring": ("losses_test.txt", (EXAMPLES / "losses_test.txt").read_bytes()),
    }
    response = client.post("/solve", files=files, data={"budgets": "1:5:0.5", "serve_by": "scoring"})
    assert response.status_code == 200, response.text
    selection = read_loss_tables(EXAMPLES / "losses.txt").selection
    scoring = read_loss_tables(EXAMPLES / "losses_test.txt").selection
    expected = budget_curve(selection, scoring=scoring, serve_by="scoring")
    assert response.json() == expected.model_dump(mode="json")
    assert response.json()["tasks"] == ["s", "d", "n", "k", "e"]

    renamed = client.post(
        "/solve", files={"file": ("t.tsv", files["file"][1])}, data={"tasks": "a,b,c,d,e", "budgets": "2.5"}
    )
    assert renamed.status_code == 200 and renamed.json()["tasks"] == ["a", "b", "c", "d", "e"]
    assert [r["budget"] for r in renamed.json()["curve"]] == [2.5]
    hoa = client.post(
        "/solve", files={"file": ("x", files["file"][1])}, data={"hoa": "true", "budgets": "1,2"}
    )
    assert hoa.status_code == 200
    predicted = [n for r in hoa.json()["curve"] for n in r["networks"] if len(n["tasks"]) >= 3]
    assert all(n["predicted"] for n in predicted)


def test_solve_csv_and_json_uploads_and_weights(client: TestClient) -> None:
    table = _random_table(["u", "v", "w"], random.Random(5))
    csv_text = FORMATS["csv"].dumps(table, None)
    response = client.post(
        "/solve", files={"file": ("t.csv", csv_text.encode())}, data={"weights": "u=3,v=0.5"}
    )
    assert response.status_code == 200, response.text
    expected = budget_curve(table, weights={"u": 3, "v": 0.5}).model_dump(mode="json")
    assert response.json() == expected
    json_text = FORMATS["json"].dumps(table, None)
    response = client.post("/solve", files={"file": ("upload", json_text.encode())}, data={"format": "json"})
    assert response.json() == budget_curve(table).model_dump(mode="json")
    response = client.post(
        "/solve", files={"file": ("t.csv", csv_text.encode())}, data={"weights": '{"u": 3}'}
    )
    assert response.json()["weights"]["u"] == 3


@pytest.mark.parametrize(
    ("request_kwargs", "code", "expected"),
    [
        ({"files": {"file": ("bad.txt", b"0.1\t0.2\n0.3\tx\n")}}, 422, "bad.txt:2"),
        ({"files": {"file": ("bad.txt", b"\xff\xfe\x00")}}, 422, "not UTF-8"),
        ({"files": {"file": ("t.txt", b"0.1\t0.2\n")}, "data": {"objective": "max"}}, 422, "objective"),
        ({"files": {"file": ("t.txt", b"0.1\t0.2\n")}, "data": {"hoa": "maybe"}}, 422, "hoa"),
        ({"files": {"file": ("t.txt", b"0.1\t0.2\n")}, "data": {"weights": "s"}}, 422, "TASK=WEIGHT"),
        ({"files": {"file": ("t.txt", b"0.1\t0.2\n")}, "data": {"colour": "red"}}, 422, "unknown form field"),
        ({"files": {"file": ("t.txt", b"0.1\t0.2\n")}, "data": {"format": "xls"}}, 422, "unknown loss-table"),
        ({"data": {"budgets": "1"}}, 415, "multipart/form-data (a loss-table file upload)"),
        ({"files": {"scoring": ("s.txt", b"0.1\t0.2\n")}}, 422, "attach the loss table"),
        ({"content": b"s d n", "headers": {"content-type": "text/plain"}}, 415, "multipart/form-data"),
        ({"json": {"table": ONE_ROW, "budgets": "1:1e12:0.5"}}, 422, "more than 10000 budgets"),
        ({"files": {"file": ("t.txt", b"0.1\t0.2\n")}, "data": {"budgets": "0.5:1e9"}}, 422, "10000"),
        ({"content": b"{oops", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
        ({"json": {"table": {"tasks": ["a"], "rows": []}}}, 422, "table: rows: task(s) a are in no row"),
        (
            {"json": {"table": {"tasks": ["a"], "rows": [{"tasks": ["a"], "losses": {"a": 1}}]}, "x": 1}},
            422,
            "x",
        ),
    ],
)
def test_solve_bad_input(client: TestClient, request_kwargs: dict, code: int, expected: str) -> None:
    response = client.post("/solve", **request_kwargs)
    assert response.status_code == code, response.text
    assert expected in response.json()["detail"]


def test_solve_infeasible_budget_and_task_limit(tmp_path: Path) -> None:
    with running_app(tmp_path, solve_max_tasks=3) as client:
        table = _random_table(["a", "b", "c"], random.Random(1))
        response = _solve_json(client, table, budgets=[0.5])
        assert response.status_code == 422
        assert "cheapest selection that does costs 1 SNT" in response.json()["detail"]
        response = _solve_json(client, _random_table(["a", "b", "c", "d"], random.Random(1)))
        assert response.status_code == 422
        assert "at most 3 (TASKGROUP_SOLVE_MAX_TASKS)" in response.json()["detail"]


# ---------------------------------------------------------------------- /datasets and /healthz


def test_datasets_list_tasks_and_parameter_schemas(client: TestClient) -> None:
    datasets = {d["name"]: d for d in client.get("/datasets").json()}
    assert set(datasets) == set(DATASETS)
    planted = datasets["planted"]
    assert [t["name"] for t in planted["tasks"]] == ["a1", "a2", "b1", "b2"]
    assert planted["tasks"][0]["kind"] == "regression"
    assert "groups" in planted["params_schema"]["properties"]


def test_healthz_reports_store_and_goes_503_when_the_store_is_down(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["store"]["ok"] and body["store"]["info"]["schema_version"] >= 1
    assert body["service"]["info"]["run_jobs"] is False
    client.app.state.store.close()
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert not health.json()["store"]["ok"] and "closed" in health.json()["store"]["detail"]
    response = client.get("/jobs")
    assert response.status_code == 503 and "results store is not available" in response.json()["detail"]


# ---------------------------------------------------------------------- /metrics


TRAINING_COUNTERS = [
    f"taskgroup_trainings_{what}_total" for what in ("started", "finished", "failed", "retried", "reused")
]


def test_metrics_count_jobs_by_state_and_time_requests_by_route_template(client: TestClient) -> None:
    before = scrape(client)
    assert [before["taskgroup_jobs", {"state": s.value}] for s in JobState] == [0] * len(JobState)
    for name in [*TRAINING_COUNTERS, "taskgroup_training_seconds_count"]:  # present before any driver ran
        assert before.has(name) and before[name] == 0, name
    ids = [client.post("/jobs", json=PLANTED).json()["id"] for _ in range(3)]
    client.delete(f"/jobs/{ids[0]}")
    for job_id in ids:
        assert client.get(f"/jobs/{job_id}").status_code == 200
    assert client.get("/jobs/no-such-job").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    after = scrape(client)
    assert after["taskgroup_jobs", {"state": "queued"}] == 2
    assert after["taskgroup_jobs", {"state": "cancelled"}] == 1
    assert after["taskgroup_queue_length"] == 2 and after["taskgroup_drivers_running"] == 0
    latency = "taskgroup_http_request_duration_seconds_count"
    assert after[latency, {"method": "GET", "route": "/jobs/{job_id}", "status": "200"}] == 3
    assert after[latency, {"method": "GET", "route": "/jobs/{job_id}", "status": "404"}] == 1
    assert after[latency, {"method": "POST", "route": "/jobs", "status": "202"}] == 3
    assert after[latency, {"method": "DELETE", "route": "/jobs/{job_id}", "status": "202"}] == 1
    assert after[latency, {"method": "GET", "route": "unmatched", "status": "404"}] == 1
    routes = {labels["route"] for labels in after.labels(latency)}
    assert not any(job_id in route for route in routes for job_id in ids)  # templates, never raw paths
    assert "/metrics" in routes  # the first scrape was timed too


# ---------------------------------------------------------------------- settings


def test_settings_from_env_names_the_bad_variable() -> None:
    env = {"TASKGROUP_MAX_CONCURRENT_JOBS": "3", "TASKGROUP_API_TOKEN": "t", "RAY_ADDRESS": ""}
    settings = Settings.from_env(env)
    assert settings.max_concurrent_jobs == 3 and settings.token == "t" and settings.ray_address is None
    assert Settings.from_env({}).token is None and Settings.from_env({}).max_concurrent_jobs == 1
    with pytest.raises(ValueError, match="TASKGROUP_MAX_CONCURRENT_JOBS") as err:
        Settings.from_env({"TASKGROUP_MAX_CONCURRENT_JOBS": "zero", "TASKGROUP_API_TOKEN": "hush"})
    assert "hush" not in str(err.value)
    with pytest.raises(ValueError, match="TASKGROUP_RUN_JOBS"):
        Settings.from_env({"TASKGROUP_RUN_JOBS": "perhaps"})
    assert Settings.from_env({"TASKGROUP_RUN_JOBS": "false"}).run_jobs is False
    assert set(ENV_VARS) == set(Settings.model_fields)
    assert Settings.from_env({}, max_concurrent_jobs=4).max_concurrent_jobs == 4


def test_unknown_query_parameters_are_422_naming_the_known_ones(client: TestClient) -> None:
    response = client.get("/jobs", params={"stat": "running"})
    assert response.status_code == 422
    assert "unknown query parameter(s) 'stat'" in response.json()["detail"]
    assert "limit, offset, state" in response.json()["detail"]
    assert client.get("/jobs", params={"state": "running", "limit": 5}).status_code == 200
    assert "takes no query parameters" in client.get("/datasets", params={"x": "1"}).json()["detail"]
