"""Settings of the HTTP service, read from environment variables (one pydantic model, validated at start-up).

Every setting has an environment variable; ``Settings.from_env()`` reads them and fails with a message that
names the variable when a value is wrong (e.g. ``TASKGROUP_MAX_CONCURRENT_JOBS=abc``). Tests build
``Settings(...)`` directly.

Variables (default in brackets):

* TASKGROUP_DATABASE_URL: results store, SQLite file or ``postgresql+psycopg://...`` [sqlite:///taskgroup.db]
* TASKGROUP_API_TOKEN: bearer token every endpoint but /healthz requires; unset = no auth [unset]
* TASKGROUP_MAX_CONCURRENT_JOBS: jobs whose drivers run at once; the rest wait, queued [1]
* TASKGROUP_DATA_DIR: dataset files and caches; a job's dataset paths must lie in it [~/.cache/taskgrouping]
* TASKGROUP_RUNS_DIR: Ray Tune's experiment folders and the drivers' logs [~/.cache/taskgrouping/runs]
* TASKGROUP_MAX_UPLOAD_BYTES: largest accepted request body, 413 above it [8 MiB]
* TASKGROUP_SOLVE_MAX_TASKS: largest table ``POST /solve`` accepts [64]
* TASKGROUP_SOLVE_TIME_LIMIT: longest and default ``time_limit`` of ``POST /solve``, seconds [60]
* TASKGROUP_RUN_JOBS: false = queue jobs but never start drivers (read-only replicas, tests) [true]
* TASKGROUP_DASHBOARD: start the Ray dashboard with a local Ray [true]
* TASKGROUP_DASHBOARD_URL: the dashboard URL users can open (behind a proxy, in Docker) [from Ray]
* TASKGROUP_RAY_NUM_CPUS: CPUs of a local Ray started by the service [all]
* TASKGROUP_DRIVER_RETRIES: restarts of a crashed job driver before the job fails [2]
* TASKGROUP_SHUTDOWN_GRACE_SECONDS: time drivers get to stop on shutdown before SIGKILL [30]
* TASKGROUP_TRAINING_NICE: niceness trainings run at, 0 (same priority as the service) to 19, so the service
  keeps answering while trainings use every core [10]
* RAY_ADDRESS: an existing Ray cluster (``host:6379`` or ``auto``); unset = start a local Ray [unset]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from grouping.validation import format_errors
from search.manager import QueueSettings
from search.settings import DEFAULT_TRAINING_NICE, MAX_NICE, default_runs_dir
from search.store import DEFAULT_URL

ENV_VARS: dict[str, str] = {
    "database_url": "TASKGROUP_DATABASE_URL",
    "api_token": "TASKGROUP_API_TOKEN",
    "max_concurrent_jobs": "TASKGROUP_MAX_CONCURRENT_JOBS",
    "data_dir": "TASKGROUP_DATA_DIR",
    "runs_dir": "TASKGROUP_RUNS_DIR",
    "max_upload_bytes": "TASKGROUP_MAX_UPLOAD_BYTES",
    "solve_max_tasks": "TASKGROUP_SOLVE_MAX_TASKS",
    "solve_time_limit": "TASKGROUP_SOLVE_TIME_LIMIT",
    "run_jobs": "TASKGROUP_RUN_JOBS",
    "dashboard": "TASKGROUP_DASHBOARD",
    "dashboard_url": "TASKGROUP_DASHBOARD_URL",
    "ray_num_cpus": "TASKGROUP_RAY_NUM_CPUS",
    "driver_retries": "TASKGROUP_DRIVER_RETRIES",
    "shutdown_grace_seconds": "TASKGROUP_SHUTDOWN_GRACE_SECONDS",
    "training_nice": "TASKGROUP_TRAINING_NICE",
    "ray_address": "RAY_ADDRESS",
}
"""Setting name -> the environment variable that sets it."""


class Settings(BaseModel):
    """What the service is configured with (see the module docstring for the environment variables)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = DEFAULT_URL
    api_token: SecretStr | None = None
    max_concurrent_jobs: int = Field(1, ge=1, le=256)
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "taskgrouping")
    runs_dir: Path = Field(default_factory=default_runs_dir)
    max_upload_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    solve_max_tasks: int = Field(64, ge=2, le=64)
    solve_time_limit: float = Field(60.0, gt=0, le=3600)
    run_jobs: bool = True
    dashboard: bool = True
    dashboard_url: str | None = None
    ray_num_cpus: int | None = Field(None, ge=1)
    driver_retries: int = Field(2, ge=0, le=100)
    shutdown_grace_seconds: float = Field(30.0, gt=0, le=3600)
    training_nice: int = Field(DEFAULT_TRAINING_NICE, ge=0, le=MAX_NICE)
    ray_address: str | None = None

    @field_validator("data_dir", "runs_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        return path.expanduser().resolve()

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("ray_address", "dashboard_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def queue(self) -> QueueSettings:
        """The settings of the job queue (:class:`search.manager.JobManager`)."""
        return QueueSettings.model_validate(self.model_dump(include=set(QueueSettings.model_fields)))

    @property
    def token(self) -> str | None:
        """The API token in clear, or None when auth is off."""
        return None if self.api_token is None else self.api_token.get_secret_value()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from environment variables (``environ`` or ``os.environ``), then ``overrides``.

        Raises ValueError naming the environment variable of every bad value.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            name: env[var] for name, var in ENV_VARS.items() if env.get(var) not in (None, "")
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            errors = [_as_variable(err) for err in exc.errors(include_url=False)]
            raise ValueError("bad service settings: " + format_errors(errors, show_input=True)) from None


class _Hidden:
    """Shown in place of a secret's value in error messages."""

    def __repr__(self) -> str:
        return "(hidden)"


def _as_variable(error: Any) -> dict[str, Any]:
    """A settings validation error named by its environment variable, a secret's value hidden."""
    name = str(error["loc"][0]) if error["loc"] else ""
    shown = _Hidden() if name == "api_token" else error.get("input")
    return {**error, "loc": (ENV_VARS.get(name, name),), "input": shown}


__all__ = ["ENV_VARS", "Settings"]
