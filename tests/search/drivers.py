"""A job driver killed mid-way, as a crashed host would leave it: the Ray tests of resume use it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from search.store import Store, TrainingState


def succeeded(store: Store, job_id: str) -> int:
    """How many of the job's trainings have succeeded."""
    return sum(jt.training.state == TrainingState.SUCCEEDED for jt in store.job_trainings(job_id))


def kill_driver_when(
    store: Store, job_id: str, runs_dir: Path, ready: Callable[[], bool], timeout: float = 240.0
) -> None:
    """Run job ``job_id``'s driver (``python -m search.driver``) on the session's Ray and SIGKILL it once
    ``ready()`` holds; fails if the driver ends on its own first."""
    import ray

    env = dict(os.environ, TASKGROUP_RUNS_DIR=str(runs_dir))
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "search.driver", job_id, "--db", store.url, "--address", address]
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and driver.poll() is None and not ready():
            time.sleep(0.2)
        assert driver.poll() is None, driver.stderr.read().decode() if driver.stderr else ""
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
