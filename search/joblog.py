"""Log lines that carry the job they belong to: ``job=<id>`` on every line a job's run logs.

A job's run sets the job in a context variable (:func:`job_context`); a driver process, which runs one job,
also sets it for the whole process (:func:`set_process_job`), so threads that do not inherit the context
(Tune's, the lease keeper's) are labelled too. :class:`JobLogFilter` puts it on every record as
``record.job`` (``-`` outside a job), for a format such as :data:`JOB_FORMAT`. Messages need not repeat the
id, and a search of the service's or a driver's log for ``job=<id>`` finds all of one job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

NO_JOB = "-"
JOB_FORMAT = "%(asctime)s %(levelname)s %(name)s job=%(job)s: %(message)s"
"""The driver's log format."""

_current: ContextVar[str | None] = ContextVar("taskgroup_job", default=None)
_process_job: str | None = None


def current_job() -> str | None:
    """The job this code runs for: the context's, else the process's, else None."""
    return _current.get() or _process_job


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Everything logged in this block (in this thread or task) carries ``job_id``."""
    token = _current.set(job_id)
    try:
        yield
    finally:
        _current.reset(token)


def set_process_job(job_id: str | None) -> None:
    """The job of the whole process (a driver runs exactly one): the label of threads without a context."""
    global _process_job
    _process_job = job_id


class JobLogFilter(logging.Filter):
    """Adds ``record.job`` (the current job, or ``-``); never drops a record. A record that already has a
    ``job`` (``extra={"job": ...}``) keeps it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "job", None):
            record.job = current_job() or NO_JOB
        return True


def install(handler: logging.Handler, fmt: str = JOB_FORMAT) -> logging.Handler:
    """Give ``handler`` the filter and a format that shows the job."""
    handler.addFilter(JobLogFilter())
    handler.setFormatter(logging.Formatter(fmt))
    return handler


__all__ = ["JOB_FORMAT", "NO_JOB", "JobLogFilter", "current_job", "install", "job_context", "set_process_job"]
