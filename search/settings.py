"""Settings of a job's run read from the environment: the runs folder (Ray Tune's experiments) and the length
of a training's lease (one training per network across jobs)."""

from __future__ import annotations

import os
from pathlib import Path

RUNS_DIR_VAR = "TASKGROUP_RUNS_DIR"


def default_runs_dir() -> Path:
    """Where Tune writes its experiment folders: ``$TASKGROUP_RUNS_DIR`` or ``~/.cache/taskgrouping/runs``."""
    configured = os.environ.get(RUNS_DIR_VAR)
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".cache" / "taskgrouping" / "runs"


LEASE_SECONDS_VAR = "TASKGROUP_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 60.0


def lease_seconds() -> float:
    """How long a training's lease lasts unless renewed (``$TASKGROUP_LEASE_SECONDS``, default 60): a run
    renews its leases every third of it; a dead run's trainings are taken over by another job this long after
    it died. ValueError naming the variable for a value that is not a number of seconds in [1, 3600]."""
    text = os.environ.get(LEASE_SECONDS_VAR)
    if text is None or not text.strip():
        return DEFAULT_LEASE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 1 <= value <= 3600:
        raise ValueError(f"{LEASE_SECONDS_VAR}={text!r}: expected seconds between 1 and 3600 (default 60)")
    return value


__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "LEASE_SECONDS_VAR",
    "RUNS_DIR_VAR",
    "default_runs_dir",
    "lease_seconds",
]
