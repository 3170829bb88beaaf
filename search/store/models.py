"""What the results store returns: typed records of jobs and trainings (the API serves these as JSON).

Records are validated when the store reads them back; they are plain data (reading a job imports neither torch
nor ray).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from search.plan import Plan
from search.records import JobResult, Progress
from search.spec import JobSpec
from search.states import FINAL_JOB_STATES, JOB_TRANSITIONS, JobState, TrainingState
from workers.spec import TrainingResult, TrainingSpec


class JobInfo(BaseModel):
    """One stored job without its plan and result (what listings load)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    spec: JobSpec
    state: JobState
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    progress: Progress = Field(default_factory=Progress)
    cancel_requested: bool = False


class JobRecord(JobInfo):
    """One stored job: its spec, state, timestamps (UTC), progress, the whole plan and the result."""

    plan: Plan | None = Field(None, description="null for a job stored before plans were kept whole")
    result: JobResult | None = None


class TrainingRecord(BaseModel):
    """One stored training, shared by every job that needs the same key."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    key: str
    spec: TrainingSpec
    state: TrainingState
    attempts: int = Field(description="how many times it was marked running")
    result: TrainingResult | None = Field(None, description="its per-task losses, once succeeded")
    error: str | None = None
    device: str | None = None
    wall_seconds: float | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class CheckpointRecord(BaseModel):
    """The kept weights of one training: where Tune stored them, their size and sha256."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    training_key: str
    uri: str = Field(description="the checkpoint folder: a local path or a URI (s3://, gs://, ...)")
    size_bytes: int = Field(ge=0, description="size of its weights file")
    sha256: str = Field(description="sha256 (hex) of its weights file")
    created_at: datetime


class JobTrainingRecord(BaseModel):
    """A training as seen by one job."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    training: TrainingRecord
    reused: bool = Field(description="True when the job found the training already succeeded in the store")


__all__ = [
    "FINAL_JOB_STATES",
    "JOB_TRANSITIONS",
    "CheckpointRecord",
    "JobInfo",
    "JobRecord",
    "JobState",
    "JobTrainingRecord",
    "TrainingRecord",
    "TrainingState",
]
