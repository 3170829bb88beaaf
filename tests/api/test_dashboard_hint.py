"""Next to the Ray dashboard's URL, the CLI, GET /jobs/{id} and /healthz say how to authenticate to it
(where Ray's token is), and never show the token itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.commands.search import print_dashboard
from api.settings import Settings
from search.dashboard import dashboard_auth_hint

SECRET = "tok-5f2c9a-never-shown"
URL = "http://127.0.0.1:8265"


def test_local_hint_names_the_command_and_where_the_token_is() -> None:
    hint = dashboard_auth_hint(cluster=False, environ={})
    assert "`ray get-auth-token`" in hint and "~/.ray/auth_token" in hint
    from_env = dashboard_auth_hint(cluster=False, environ={"RAY_AUTH_TOKEN": SECRET})
    assert "RAY_AUTH_TOKEN environment variable" in from_env and SECRET not in from_env
    from_file = dashboard_auth_hint(cluster=False, environ={"RAY_AUTH_TOKEN_PATH": "/run/secrets/ray"})
    assert "RAY_AUTH_TOKEN_PATH" in from_file and "/run/secrets/ray" in from_file


def test_cluster_hint_names_the_settings_that_hold_the_token() -> None:
    hint = dashboard_auth_hint(cluster=True, environ={"RAY_AUTH_TOKEN": SECRET, "RAY_AUTH_MODE": "token"})
    assert "RAY_AUTH_TOKEN" in hint and "RAY_AUTH_TOKEN_PATH" in hint and "head node" in hint
    assert "`ray get-auth-token`" in hint and SECRET not in hint


def test_auth_disabled_says_no_token_is_needed() -> None:
    hint = dashboard_auth_hint(cluster=False, environ={"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": SECRET})
    assert "RAY_AUTH_MODE=disabled" in hint and "no token needed" in hint and SECRET not in hint


def test_the_cli_prints_the_hint_under_the_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", SECRET)
    print_dashboard(URL, cluster=False)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and lines[0] == f"Ray dashboard: {URL}"
    assert "ray get-auth-token" in lines[1] and SECRET not in err


def test_get_job_and_healthz_carry_the_hint_never_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", SECRET)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        run_jobs=False,
        data_dir=tmp_path,
        runs_dir=tmp_path / "runs",
        dashboard_url=URL,
    )
    spec = {"dataset": {"name": "planted"}, "tasks": ["a1", "a2"]}
    with TestClient(create_app(settings)) as client:
        job_id = client.post("/jobs", json=spec).json()["id"]
        response = client.get(f"/jobs/{job_id}")
        detail = response.json()
        assert detail["dashboard_url"] == URL
        assert "ray get-auth-token" in detail["dashboard_auth"]
        assert SECRET not in response.text
        listing = client.get("/jobs").text + client.get("/healthz").text + client.get("/openapi.json").text
        assert SECRET not in listing
    without = settings.model_copy(update={"dashboard_url": None})
    with TestClient(create_app(without)) as client:
        job_id = client.post("/jobs", json=spec).json()["id"]
        assert client.get(f"/jobs/{job_id}").json()["dashboard_auth"] is None  # no dashboard, no hint


def test_a_service_on_a_cluster_gets_the_cluster_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hint the service serves and logs at start-up (``_set_dashboard_auth``, checked without Ray) is the
    cluster's when the service joins Ray by address."""
    from api.app import _set_dashboard_auth

    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", SECRET)
    app = create_app(Settings(run_jobs=False, ray_address="10.0.0.5:6379", dashboard_url=URL))
    app.state.dashboard_url = URL
    _set_dashboard_auth(app, app.state.settings)
    assert "cluster's Ray auth token" in app.state.dashboard_auth and SECRET not in app.state.dashboard_auth
