"""The faces of bundles: GET /jobs/{id}/models, `taskgroup export`, `taskgroup predict`, `taskgroup gc`.

Two small tabular jobs trained in this process (``tests.bundles``, no Ray): the first kept the weights of its
budget (as a finalize leaves it), the second (another seed, so other trainings) kept none.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as cli_main
from api.settings import Settings
from search.store import Store, open_store
from tests.bundles import TrainedJob, keep, keep_budget, run_in_process, tabular_spec, write_tabular_csv
from workers.bundle import load_bundle

TASKS = {"y": "regression", "z": "binary"}


@dataclass
class Jobs:
    url: str
    store: Store
    csv: Path
    kept: TrainedJob
    kept_keys: list[str]
    bare: TrainedJob
    folder: Path


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Jobs:
    folder = tmp_path_factory.mktemp("models")
    url = f"sqlite:///{folder / 'store.db'}"
    store = open_store(url)
    csv = write_tabular_csv(folder / "data.csv", rows=240)
    settings = {"epochs": 2, "batch_size": 32}
    kept = run_in_process(store, tabular_spec(csv, TASKS, budgets=[1.0], training=settings))
    kept_keys = keep_budget(store, kept, 1.0, folder / "runs")
    bare = run_in_process(store, tabular_spec(csv, TASKS, budgets=[1.0], training=settings, seed=1))
    return Jobs(url, store, csv, kept, kept_keys, bare, folder)


@pytest.fixture(scope="module")
def client(jobs: Jobs) -> Iterator[TestClient]:
    settings = Settings(
        database_url=jobs.url, run_jobs=False, data_dir=jobs.folder, runs_dir=jobs.folder / "runs"
    )
    with TestClient(create_app(settings)) as c:
        yield c


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------------------------------------ HTTP


def test_models_route_downloads_a_bundle(client: TestClient, jobs: Jobs) -> None:
    job_id = jobs.kept.job.id
    response = client.get(f"/jobs/{job_id}/models", params={"budget": 1})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == f'attachment; filename="job-{job_id}-models-1snt.zip"'
    bundle = load_bundle(io.BytesIO(response.content))
    assert bundle.manifest.job_id == job_id and bundle.tasks == ["y", "z"]
    predictions = bundle.predict(pd.read_csv(jobs.csv))
    assert list(predictions.columns) == ["y", "z"] and len(predictions) == 240


def test_models_route_errors_say_what_to_do(client: TestClient, jobs: Jobs) -> None:
    bare = jobs.bare.job.id
    response = client.get(f"/jobs/{bare}/models", params={"budget": 1})
    assert response.status_code == 409
    assert response.json()["detail"].endswith(
        f"finalize it: resubmit the job with finalize_budgets: [1], or run: taskgroup search --resume {bare} "
        "--finalize 1"
    )
    response = client.get(f"/jobs/{jobs.kept.job.id}/models", params={"budget": 2})
    assert response.status_code == 422 and "choose one of: 1" in response.json()["detail"]
    assert client.get("/jobs/nope/models", params={"budget": 1}).status_code == 404
    queued = client.post("/jobs", json=tabular_spec(jobs.csv, TASKS)).json()["id"]
    response = client.get(f"/jobs/{queued}/models", params={"budget": 1})
    assert response.status_code == 404 and "it is queued" in response.json()["detail"]
    assert client.get(f"/jobs/{bare}/models").status_code == 422  # the budget is required
    assert client.get(f"/jobs/{bare}/models", params={"budget": -1}).status_code == 422
    assert "/jobs/{job_id}/models" in client.get("/openapi.json").json()["paths"]


# ------------------------------------------------------------------------------------------------ CLI


def test_export_then_predict(capsys: pytest.CaptureFixture[str], jobs: Jobs, tmp_path: Path) -> None:
    bundle = tmp_path / "out" / "bundle.zip"
    code, out, err = cli(
        capsys, "export", jobs.kept.job.id, "--budget", "1", "-o", str(bundle), "--db", jobs.url
    )
    assert code == 0, err
    assert bundle.is_file() and not list(bundle.parent.glob("*.part"))
    assert f"bundle written to {bundle}" in out
    assert f"predict with: taskgroup predict {bundle} data.csv -o predictions.csv" in out
    predictions = tmp_path / "predictions.csv"
    code, _, err = cli(capsys, "predict", str(bundle), str(jobs.csv), "-o", str(predictions), "--keep", "a")
    assert code == 0, err
    frame = pd.read_csv(predictions)
    assert list(frame.columns) == ["a", "y", "z"] and len(frame) == 240
    expected = load_bundle(bundle).predict(pd.read_csv(jobs.csv, skipinitialspace=True))
    assert frame["y"].to_numpy() == pytest.approx(expected["y"].to_numpy(), rel=1e-9)
    code, out, _ = cli(capsys, "predict", str(bundle), str(jobs.csv))  # to stdout
    assert code == 0 and out.splitlines()[0] == "y,z" and len(out.splitlines()) == 241


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str], jobs: Jobs, tmp_path: Path) -> None:
    code, _, err = cli(
        capsys, "export", jobs.bare.job.id, "--budget", "1", "-o", str(tmp_path / "b.zip"), "--db", jobs.url
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "was not finalized" in err and f"taskgroup search --resume {jobs.bare.job.id} --finalize 1" in err
    assert not (tmp_path / "b.zip").exists()
    bundle = tmp_path / "ok.zip"
    assert (
        cli(capsys, "export", jobs.kept.job.id, "--budget", "1", "-o", str(bundle), "--db", jobs.url)[0] == 0
    )
    bad = pd.read_csv(jobs.csv).astype({"c": object})
    bad.loc[7, "c"] = "n/a?"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    code, _, err = cli(
        capsys, "predict", str(bundle), str(tmp_path / "bad.csv"), "-o", str(tmp_path / "p.csv")
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "row 8 (index 7), column 'c': 'n/a?' is not a number" in err
    data = bytearray(bundle.read_bytes())
    data[len(data) // 3] ^= 0xFF
    (tmp_path / "altered.zip").write_bytes(bytes(data))
    code, _, err = cli(capsys, "predict", str(tmp_path / "altered.zip"), str(jobs.csv))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "refused" in err or "not a readable bundle" in err


def test_gc_keeps_what_jobs_need(capsys: pytest.CaptureFixture[str], jobs: Jobs) -> None:
    chosen = set(jobs.kept_keys)
    spare = next(k for k in jobs.kept.trained if k not in chosen)
    record = keep(jobs.store, spare, jobs.kept.trained[spare], jobs.folder / "spare")
    code, out, _ = cli(capsys, "gc", "--dry-run", "--db", jobs.url)
    assert code == 0 and f"{spare}" in out and "would remove 1 checkpoint(s)" in out
    assert Path(record.uri).exists()
    code, out, _ = cli(capsys, "gc", "--db", jobs.url)
    assert code == 0 and "removed 1 checkpoint(s)" in out and f"kept {len(chosen)} that jobs need" in out
    assert not Path(record.uri).exists() and jobs.store.get_checkpoint(spare) is None
