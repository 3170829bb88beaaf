"""Deployment files: docker-compose.yml validated by Docker Compose itself, the Dockerfile and .dockerignore
checked for what the deployment relies on.

No Docker engine runs on the development machines, so the image is not built here: ``docker compose config``
(or Debian's ``docker-compose`` v1) parses, validates and interpolates the compose file without an engine.
Those tests skip where neither is installed (``apt-get install docker-compose`` provides v1).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SECRETS = {
    "RAY_AUTH_TOKEN": "ray-secret",
    "POSTGRES_PASSWORD": "pg-secret",
    "TASKGROUP_API_TOKEN": "api-secret",
}


def compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin) if it works, else ``docker-compose`` (v1), else None."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("TASKGROUP_")}
    return subprocess.run(
        [*command, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**clean, **env},
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_has_a_head_two_workers_and_postgres_with_health_checks(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == {"postgres", "ray-head", "ray-worker-1", "ray-worker-2"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert services["postgres"]["healthcheck"]["test"][-1].startswith("pg_isready")
    head_check = " ".join(services["ray-head"]["healthcheck"]["test"])
    assert "/healthz" in head_check


def test_the_head_runs_ray_and_the_api_on_postgres(config: dict[str, Any]) -> None:
    head = config["services"]["ray-head"]
    command = " ".join(head["command"])
    assert "ray start --head --port=6379" in command and "--dashboard-host=0.0.0.0" in command
    assert "exec taskgroup serve --host 0.0.0.0 --port 8000 --address auto" in command
    assert "serve" in COMMANDS  # the command the image runs exists
    env = head["environment"]
    assert env["TASKGROUP_DATABASE_URL"] == "postgresql+psycopg://taskgroup:pg-secret@postgres:5432/taskgroup"
    assert env["TASKGROUP_API_TOKEN"] == "api-secret" and env["RAY_AUTH_TOKEN"] == "ray-secret"
    assert env["RAY_AUTH_MODE"] == "token"
    assert head["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert {p["target"] for p in head["ports"]} == {8000, 8265}


def test_workers_join_the_head_with_the_same_token_and_shared_volumes(config: dict[str, Any]) -> None:
    services = config["services"]
    head_mounts = {v.split(":")[1] for v in services["ray-head"]["volumes"]}
    for name in ("ray-worker-1", "ray-worker-2"):
        worker = services[name]
        command = " ".join(worker["command"])
        assert "ray start --address=ray-head:6379" in command and "--block" in command
        assert worker["depends_on"]["ray-head"]["condition"] == "service_healthy"
        assert worker["environment"]["RAY_AUTH_TOKEN"] == "ray-secret"
        # dataset cache and Tune's storage path must be the same folders on every node
        mounts = {v.split(":")[1] for v in worker["volumes"]}
        assert mounts == head_mounts == {"/data", "/runs"}
    volumes = set(config["volumes"])
    assert volumes == {"pgdata", "datasets", "runs"}
    assert any(v.startswith("pgdata:/var/lib/postgresql/data") for v in services["postgres"]["volumes"])


FAKE_RAYLET = (
    "import ctypes, time\n"
    "ctypes.CDLL(None).prctl(15, b'raylet', 0, 0, 0)  # PR_SET_NAME: /proc/<pid>/comm reads raylet\n"
    "print('named', flush=True)\n"
    "time.sleep(60)\n"
)


def _raylet_runs() -> bool:
    """Whether a process called raylet runs here, read from /proc independently of the check."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "raylet":
                return True
        except OSError:
            continue
    return False


@pytest.mark.skipif(not Path("/proc/self/comm").exists(), reason="the check reads Linux's /proc")
def test_worker_health_check_sees_the_raylet(config: dict[str, Any]) -> None:
    """The workers' check (Python code run with ``python -c``) exits 0 when a raylet runs and 1 when none
    does, and never by crashing (a traceback would also exit 1: stderr must stay empty)."""
    test = config["services"]["ray-worker-1"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", test[3]], capture_output=True, text=True, timeout=30)

    expected = 0 if _raylet_runs() else 1  # the test session's own Ray may run a raylet
    result = check()
    assert (result.returncode, result.stderr) == (expected, "")
    fake = subprocess.Popen([sys.executable, "-c", FAKE_RAYLET], stdout=subprocess.PIPE, text=True)
    try:
        assert fake.stdout is not None and fake.stdout.readline().strip() == "named"
        result = check()
        assert (result.returncode, result.stderr) == (0, "")
    finally:
        fake.kill()
        fake.wait()


def test_compose_refuses_to_start_without_the_secrets() -> None:
    result = compose_config({"POSTGRES_PASSWORD": "pg-secret"})
    assert result.returncode != 0
    assert "RAY_AUTH_TOKEN" in result.stderr
    result = compose_config({"RAY_AUTH_TOKEN": "ray-secret"})
    assert result.returncode != 0 and "POSTGRES_PASSWORD" in result.stderr


# ---------------------------------------------------------------------- Dockerfile and .dockerignore


def dockerfile_lines() -> list[str]:
    """Instructions of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_slim_base_constraints_and_non_root_user() -> None:
    lines = dockerfile_lines()
    version = next(line.split("=", 1)[1] for line in lines if line.startswith("ARG PYTHON_VERSION="))
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert bases and all(base.startswith("python:${PYTHON_VERSION}-slim") for base in bases)
    assert version == "3.11"  # the oldest Python pyproject.toml allows
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={version}"
    installs = [line for line in lines if "pip install" in line]
    assert installs and all("-c constraints.txt" in line for line in installs)
    final_stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    users = [line.split()[1] for line in final_stage if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") and "/healthz" in line for line in final_stage)
    assert any(line.startswith("EXPOSE") and "8000" in line for line in final_stage)


def test_every_dependency_is_pinned_by_the_constraints_file() -> None:
    """The image installs pyproject's dependencies under constraints.txt: each must be pinned there."""
    pinned = {
        re.split(r"[=<>\[ ]", line)[0].lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[=<>\[ ;]", dep)[0].lower().replace("_", "-") for dep in dependencies}
    assert names - pinned == set()


def test_dockerignore_sends_only_what_the_image_copies() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"  # a whitelist: .venv, .git, databases and caches never reach the build
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied = set()
    for line in dockerfile_lines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied.update(line.split()[1:-1])
    assert copied and copied <= allowed, copied - allowed
    for source in copied:
        assert (ROOT / source).exists(), source
