"""Errors raised by the results store, each with a message that says what to do next."""

from __future__ import annotations


class StoreError(RuntimeError):
    """Base class of the results store's own errors (a RuntimeError: a condition of the running system)."""


class StoreUnavailableError(StoreError):
    """The database does not answer (server down, wrong host or port, unopenable file, lock held too long)."""


class MissingStoreError(StoreUnavailableError):
    """A SQLite store file that does not exist, opened by a command that only reads (it is not created)."""


class SchemaVersionError(StoreError):
    """The database schema cannot be used by this code (newer than the code, or no upgrade path)."""


class NotFoundError(KeyError):
    """A job or training that is not in the store.

    A :class:`KeyError` (so ``except KeyError`` works) whose ``str()`` is the plain message, without the
    quotes ``KeyError`` normally adds.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class JobNotFoundError(NotFoundError):
    """``job <id> not found``."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class TrainingNotFoundError(NotFoundError):
    """``training <key> not found``."""

    def __init__(self, key: str) -> None:
        super().__init__(f"training {key} not found")
        self.key = key
