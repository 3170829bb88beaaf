"""The results store: jobs and trainings in SQLite (default, WAL) or PostgreSQL, with schema versions.

See docs/store.md. Open one with :func:`open_store` and share it between threads.
"""

from search.store.backends import DEFAULT_URL, ENV_VAR
from search.store.errors import (
    JobNotFoundError,
    MissingStoreError,
    NotFoundError,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
    TrainingNotFoundError,
)
from search.store.migrations import SCHEMA_VERSION
from search.store.models import (
    JOB_TRANSITIONS,
    CheckpointRecord,
    JobInfo,
    JobRecord,
    JobState,
    JobTrainingRecord,
    TrainingRecord,
    TrainingState,
)
from search.store.store import Store, open_store

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "JOB_TRANSITIONS",
    "SCHEMA_VERSION",
    "CheckpointRecord",
    "JobInfo",
    "JobNotFoundError",
    "JobRecord",
    "JobState",
    "JobTrainingRecord",
    "MissingStoreError",
    "NotFoundError",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "TrainingNotFoundError",
    "TrainingRecord",
    "TrainingState",
    "open_store",
]
