"""Response (and non-spec request) models of the HTTP API: what the OpenAPI document at /docs shows.

The request model of ``POST /jobs`` is :class:`search.spec.JobSpec` itself (the same model as the CLI's
spec files); a job's progress and result are the typed records of :mod:`search.records` (one definition for
the store, the API and the CLI). Results keep the DESIGN.md shape: a budget curve whose ``curve`` holds one
record per budget.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from grouping.schema import LossTableModel
from grouping.service import SolveOptions
from search.plan import PlanSummary
from search.records import Progress
from search.spec import JobSpec
from search.states import JobState, TrainingState


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: ``detail`` says what is wrong and how to fix it."""

    detail: str = Field(description="what is wrong and what to do about it")
    errors: list[dict[str, Any]] | None = Field(None, description="one entry per invalid field, if any")


class JobLinks(BaseModel):
    """Where to find a job and its outputs."""

    self: str
    trainings: str
    result: str
    grouping: str = Field(description="add ?budget=B (one of the job's budgets)")
    dashboard: str | None = Field(None, description="the Ray dashboard, where the job's trials run")


class JobCreated(BaseModel):
    """The answer to ``POST /jobs`` (202): the job is queued and runs in the background."""

    id: str
    state: JobState
    created_at: datetime
    trainings_planned: int | None = None
    links: JobLinks


class JobSummary(BaseModel):
    """One job in a listing."""

    id: str
    name: str | None = None
    state: JobState
    dataset: str | None = None
    tasks: list[str] = Field(default_factory=list)
    approximation: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: Progress
    cancel_requested: bool = False
    error: str | None = None
    links: JobLinks


class JobDetail(JobSummary):
    """One job with its spec, plan, timings and the Ray dashboard URL."""

    spec: JobSpec
    plan: PlanSummary | None = None
    queue_position: int | None = Field(None, description="1 = next to start (queued jobs only)")
    elapsed_seconds: float | None = Field(None, description="since it started (until it finished)")
    dashboard_url: str | None = None
    dashboard_auth: str | None = Field(
        None,
        description="how to authenticate to the Ray dashboard (where its token is; never the token itself)",
    )
    budgets: list[float] = Field(default_factory=list, description="the budgets of its budget curve (SNT)")


class JobPage(BaseModel):
    """A page of jobs, newest first."""

    items: list[JobSummary]
    total: int
    limit: int
    offset: int
    next: str | None = Field(None, description="URL of the next page, if any")


class TrainingView(BaseModel):
    """One training of a job: its candidate, state and per-task losses once it succeeded."""

    key: str
    tasks: list[str]
    capacity: float
    fidelity: float
    seed: int
    state: TrainingState
    reused: bool = Field(description="found already trained in the store when the job started")
    attempts: int
    selection: dict[str, float] | None = Field(None, description="validation losses per task")
    scoring: dict[str, float] | None = Field(None, description="test losses per task")
    epochs_run: int | None = None
    wall_seconds: float | None = None
    device: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TrainingList(BaseModel):
    """Every training of a job."""

    job_id: str
    total: int
    counts: dict[str, int] = Field(description="trainings per state")
    items: list[TrainingView]


class SolveRequest(SolveOptions):
    """``POST /solve`` as JSON: a loss table (selection rows, optional scoring rows) and the options of
    :class:`grouping.service.SolveOptions` (the same grammar as ``taskgroup solve``'s flags)."""

    table: LossTableModel


class HealthComponent(BaseModel):
    """One part of the service and whether it works."""

    ok: bool
    detail: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)


class Health(BaseModel):
    """``GET /healthz``: 200 when everything works, 503 otherwise."""

    status: Literal["ok", "degraded"]
    version: str
    uptime_seconds: float
    service: HealthComponent
    store: HealthComponent
    ray: HealthComponent


class DatasetInfo(BaseModel):
    """A built-in dataset: its tasks (with default parameters) and the JSON schema of its parameters."""

    name: str
    description: str
    input_kind: str
    tasks: list[dict[str, Any]] | None = Field(None, description="null when the tasks depend on the params")
    tasks_note: str | None = None
    params_schema: dict[str, Any]


__all__ = [
    "DatasetInfo",
    "ErrorResponse",
    "Health",
    "HealthComponent",
    "JobCreated",
    "JobDetail",
    "JobLinks",
    "JobPage",
    "JobSummary",
    "Progress",
    "SolveRequest",
    "TrainingList",
    "TrainingView",
]
