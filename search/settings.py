"""Where a search keeps its files: the one definition of the default runs folder (Ray Tune's experiments)."""

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


__all__ = ["RUNS_DIR_VAR", "default_runs_dir"]
