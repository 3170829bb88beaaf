"""Settings of a job's run read from the environment: the runs folder (Ray Tune's experiments), the length
of a training's lease (one training per network across jobs) and the scheduling priority of trainings."""

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


TRAINING_NICE_VAR = "TASKGROUP_TRAINING_NICE"
DEFAULT_TRAINING_NICE = 10
MAX_NICE = 19


def parse_training_nice(text: str | None) -> int:
    """The niceness trainings run at from the text of ``$TASKGROUP_TRAINING_NICE`` (None or blank: the default
    10; 0: trainings keep the priority they start with). ValueError naming the variable for anything but an
    integer in [0, 19]: an unprivileged process may only lower its priority, so negatives are refused."""
    if text is None or not text.strip():
        return DEFAULT_TRAINING_NICE
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_NICE:
        raise ValueError(
            f"{TRAINING_NICE_VAR}={text!r}: expected an integer niceness from 0 (off) to {MAX_NICE} "
            f"(default {DEFAULT_TRAINING_NICE})"
        )
    return value


def training_nice() -> int:
    """How far trainings lower their scheduling priority (``$TASKGROUP_TRAINING_NICE``, default 10).

    Why: the trainings and the HTTP service share the machine's cores, and a training is a batch job where a
    request is interactive; at niceness 10 the kernel gives the service's threads about ten times the CPU
    share of a training when both want a core, so the service stays responsive while every core trains."""
    return parse_training_nice(os.environ.get(TRAINING_NICE_VAR))


__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_TRAINING_NICE",
    "LEASE_SECONDS_VAR",
    "MAX_NICE",
    "RUNS_DIR_VAR",
    "TRAINING_NICE_VAR",
    "default_runs_dir",
    "lease_seconds",
    "parse_training_nice",
    "training_nice",
]
