"""The one set of states of jobs and trainings, and the moves a job may make between them."""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class JobState(StrEnum):
    """Life cycle of a job: ``queued -> running -> succeeded | failed | cancelled``."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True for the states a job ends in (``succeeded``, ``failed``, ``cancelled``)."""
        return self in FINAL_JOB_STATES


FINAL_JOB_STATES: frozenset[JobState] = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

JOB_TRANSITIONS: MappingProxyType[JobState, frozenset[JobState]] = MappingProxyType(
    {
        JobState.QUEUED: frozenset({JobState.QUEUED, JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
        JobState.RUNNING: frozenset(JobState),
        JobState.SUCCEEDED: frozenset({JobState.SUCCEEDED}),
        JobState.FAILED: frozenset({JobState.FAILED, JobState.QUEUED, JobState.RUNNING}),
        JobState.CANCELLED: frozenset({JobState.CANCELLED, JobState.QUEUED, JobState.RUNNING}),
    }
)
"""Which state a job may move to from each state. Staying in the same state is allowed (to update progress,
plan or result). A failed or cancelled job may be queued or run again (resume); a succeeded job is final."""


class TrainingState(StrEnum):
    """Life cycle of a training: ``pending -> running -> succeeded | failed`` (a failed one may run again)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


__all__ = ["FINAL_JOB_STATES", "JOB_TRANSITIONS", "JobState", "TrainingState"]
