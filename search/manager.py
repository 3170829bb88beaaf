"""The job queue: jobs waiting in the store, each run by a driver process of its own (the job life cycle of
the service; the HTTP face only calls it).

Why processes: Ray Tune allows one ``Tuner.fit()`` per process (two in threads of one process are unsafe, see
STACK.md), so each running job gets a ``python -m search.driver JOB_ID`` process connected to the service's
Ray cluster; Ray shares the cluster's CPUs and GPUs between the trials of all running jobs.

What the manager does, in one background thread:

* **queue**: jobs are the store's unfinished jobs (``queued`` or ``running``), oldest first; at most
  ``max_concurrent_jobs`` drivers run at once, the rest wait in state ``queued``;
* **resume**: on start-up the same rule picks up every job a previous service left unfinished (its driver
  reuses the trainings already stored, so only what is missing is trained);
* **cancel**: a queued job is cancelled at once; a running one gets ``cancel_requested`` in the store, which
  its driver polls (about once a second), stopping its trials and ending the job ``cancelled``;
* **crashes**: a driver that exits without bringing its job to a final state is restarted up to
  ``driver_retries`` times, then the job fails with the tail of the driver's log as its error;
* **shutdown**: every driver gets SIGTERM (the job goes back to ``queued``, finished trainings stay stored)
  and ``shutdown_grace_seconds`` to stop, then SIGKILL; a job left ``running`` is put back to ``queued``.

The store is the only shared state: one service per store (several API processes on one store would each
start drivers for the same jobs). ``run_jobs=False`` keeps the queue but never starts a driver (tests, a
read-only replica).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict, Field

from search.metrics import MULTIPROC_VAR
from search.settings import DEFAULT_TRAINING_NICE, MAX_NICE, TRAINING_NICE_VAR, default_runs_dir
from search.store import JobRecord, JobState, Store, StoreError

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
"""How often the manager looks at its drivers and the queue when nothing wakes it."""

LOG_TAIL_LINES = 20


class JobFinishedError(Exception):
    """The job is already in a final state (the API answers 409)."""


class QueueSettings(BaseModel):
    """How the queue runs jobs (the service's settings give these; tests build them directly)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_jobs: bool = Field(True, description="start drivers; false: keep the queue only")
    max_concurrent_jobs: int = Field(1, ge=1, le=256)
    runs_dir: Path = Field(default_factory=default_runs_dir, description="Tune experiments and driver logs")
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "taskgrouping")
    driver_retries: int = Field(2, ge=0, le=100, description="restarts of a crashing driver")
    shutdown_grace_seconds: float = Field(30.0, gt=0, le=3600)
    training_nice: int = Field(
        DEFAULT_TRAINING_NICE,
        ge=0,
        le=MAX_NICE,
        description="niceness the drivers' trainings run at, below the service (0: same priority)",
    )


class QueueStatus(BaseModel):
    """What /healthz reports about the queue."""

    run_jobs: bool
    max_concurrent_jobs: int
    running: list[str]
    alive: bool
    error: str | None = None


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the driver get SIGTERM if the service dies without stopping it (Linux).

    Loaded in the parent, so the child (between fork and exec) only makes one system call. Without it, a
    SIGKILLed service would leave drivers running, and the next service would start a second driver for
    the same job.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    sigterm = int(signal.SIGTERM)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)

    return preexec


@dataclass
class Driver:
    """One running driver process and what the manager knows about it."""

    job_id: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    started: float


class JobManager:
    """Queue, concurrent driver processes, resume on start-up, cancel and shutdown (see the module doc)."""

    def __init__(
        self,
        store: Store,
        settings: QueueSettings,
        ray_address: str | None,
        *,
        python: str = sys.executable,
        poll_seconds: float = POLL_SECONDS,
        metrics_dir: Path | None = None,
    ) -> None:
        if settings.run_jobs and not ray_address:
            raise ValueError("the job manager needs the Ray address its drivers connect to (ray_address)")
        self.store = store
        self.settings = settings
        self.ray_address = ray_address
        self.python = python
        self.poll_seconds = poll_seconds
        self.metrics_dir = metrics_dir
        self._drivers: dict[str, Driver] = {}
        self._crashes: dict[str, int] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._preexec = _parent_death_signal()
        self.last_error: str | None = None

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start the manager thread; it resumes unfinished jobs at once."""
        if self._thread is not None:
            return
        unfinished = self.store.unfinished_jobs()
        if unfinished:
            ids = ", ".join(j.id for j in unfinished)
            log.info("resuming %d unfinished job(s): %s", len(unfinished), ids)
        self._thread = threading.Thread(target=self._loop, name="taskgroup-job-manager", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop the manager: SIGTERM every driver, wait ``shutdown_grace_seconds``, then SIGKILL."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            drivers = list(self._drivers.values())
        for driver in drivers:
            if driver.process.poll() is None:
                log.info("stopping the driver of job %s (pid %d)", driver.job_id, driver.process.pid)
                with contextlib.suppress(ProcessLookupError):
                    driver.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        for driver in drivers:
            try:
                driver.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("driver of job %s did not stop in time: killing it", driver.job_id)
                driver.process.kill()
                driver.process.wait()
            self._release(driver)
            self._requeue_if_running(driver.job_id)

    def notify(self) -> None:
        """Wake the manager now (a job was submitted or cancelled)."""
        self._wake.set()

    # ------------------------------------------------------------------ queries and commands

    def running_jobs(self) -> list[str]:
        """Ids of the jobs whose driver is running in this service."""
        with self._lock:
            return [job_id for job_id, d in self._drivers.items() if d.process.poll() is None]

    def waiting_jobs(self) -> list[str]:
        """Ids of the queued jobs that wait for a driver, oldest first (reads ids only: cheap enough for every
        scrape of /metrics)."""
        running = set(self.running_jobs())
        return [job_id for job_id in self.store.job_ids(JobState.QUEUED) if job_id not in running]

    def queue_position(self, job_id: str) -> int | None:
        """1 for the queued job that starts next, 2 for the one after...; None if not waiting."""
        running = set(self.running_jobs())
        waiting = [
            j.id for j in self.store.unfinished_jobs() if j.state is JobState.QUEUED and j.id not in running
        ]
        return waiting.index(job_id) + 1 if job_id in waiting else None

    def log_path(self, job_id: str) -> Path:
        return self.settings.runs_dir / "logs" / f"job-{job_id}.log"

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a job: at once if it is queued here, else through the store flag its driver polls.

        Raises KeyError for an unknown job and :class:`JobFinishedError` for a finished one.
        """
        job = self.store.get_job(job_id)
        if job.state.is_final:
            raise JobFinishedError(f"job {job_id} is already {job.state.value}: nothing to cancel")
        job = self.store.request_cancel(job_id)
        with self._lock:
            driver = self._drivers.get(job_id)
            if driver is None or driver.process.poll() is not None:
                job = self.store.get_job(job_id)
                if not job.state.is_final:
                    job = self.store.update_job(job_id, state=JobState.CANCELLED)
        self.notify()
        return job

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._reap()
                if self.settings.run_jobs:
                    self._launch_queued()
                self.last_error = None
            except StoreError as exc:  # the database is down: keep the drivers, try again later
                self.last_error = str(exc)
                log.warning("job manager: %s", exc)
            except Exception as exc:  # never let the manager thread die
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("job manager loop failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def _launch_queued(self) -> None:
        with self._lock:
            free = self.settings.max_concurrent_jobs - len(self._drivers)
            if free <= 0:
                return
            for job in self.store.unfinished_jobs():
                if free <= 0 or self._stopping.is_set():
                    break
                if job.id in self._drivers:
                    continue
                if job.cancel_requested:
                    self.store.update_job(job.id, state=JobState.CANCELLED)
                    continue
                try:
                    self._launch(job.id)
                except OSError as exc:  # no interpreter, no room for the log: count it as a crash
                    self._count_crash(job.id, f"the driver could not start: {exc}")
                    continue
                free -= 1

    def _launch(self, job_id: str) -> None:
        log_path = self.log_path(job_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("ab")
        # The store URL goes in the environment, not the command line (where `ps` would show its password).
        command = [self.python, "-m", "search.driver", job_id]
        if self.ray_address:
            command += ["--address", self.ray_address]
        env = dict(os.environ)
        env["TASKGROUP_RUNS_DIR"] = str(self.settings.runs_dir)
        env["TASKGROUP_DATA_DIR"] = str(self.settings.data_dir)
        env["TASKGROUP_DATABASE_URL"] = self.store.url
        env[TRAINING_NICE_VAR] = str(self.settings.training_nice)
        env.pop(MULTIPROC_VAR, None)
        if self.metrics_dir is not None:  # the driver counts its trainings where the service's /metrics reads
            env[MULTIPROC_VAR] = str(self.metrics_dir)
        env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        env.pop("RAY_ADDRESS", None)  # the driver gets --address; a stale RAY_ADDRESS must not win
        log_file.write(f"--- driver started {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        log_file.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C on the service's terminal reaches the service, which stops them
            preexec_fn=self._preexec,  # one prctl call, loaded before the fork
        )
        self._drivers[job_id] = Driver(job_id, process, log_path, log_file, time.monotonic())
        log.info("job %s: driver started (pid %d, log %s)", job_id, process.pid, log_path)

    def _reap(self) -> None:
        with self._lock:
            ended = [d for d in self._drivers.values() if d.process.poll() is not None]
        for driver in ended:
            self._release(driver)
            self._after_exit(driver)

    def _release(self, driver: Driver) -> None:
        with self._lock:
            if self._drivers.get(driver.job_id) is driver:
                del self._drivers[driver.job_id]
        with contextlib.suppress(OSError):
            driver.log_file.close()

    def _after_exit(self, driver: Driver) -> None:
        code = driver.process.returncode
        job = self.store.get_job(driver.job_id)
        if job.state.is_final:
            log.info("job %s: %s (driver exit code %s)", job.id, job.state.value, code)
            self._crashes.pop(job.id, None)
            return
        if job.cancel_requested:
            self.store.update_job(job.id, state=JobState.CANCELLED)
            return
        tail = self._log_tail(driver.log_path)
        self._count_crash(
            job.id,
            f"the job's driver exited with code {code} before finishing",
            f"last lines of its log {driver.log_path}:\n{tail}",
        )

    def _count_crash(self, job_id: str, what: str, detail: str = "") -> None:
        """One more failed driver run of the job; past ``driver_retries`` the job fails with ``what``."""
        crashes = self._crashes.get(job_id, 0) + 1
        self._crashes[job_id] = crashes
        if crashes > self.settings.driver_retries:
            log.error("job %s: %s (%d times): job failed", job_id, what, crashes)
            error = f"{what} ({crashes} times)" + (f"; {detail}" if detail else "")
            self.store.update_job(job_id, state=JobState.FAILED, error=error)
            self._crashes.pop(job_id, None)
        else:
            log.warning(
                "job %s: %s; restarting it (%d/%d)\n%s",
                job_id,
                what,
                crashes,
                self.settings.driver_retries,
                detail,
            )

    def _requeue_if_running(self, job_id: str) -> None:
        try:
            job = self.store.get_job(job_id)
            if job.state is JobState.RUNNING:
                self.store.update_job(job_id, state=JobState.QUEUED)
        except (KeyError, StoreError) as exc:
            log.warning("could not put job %s back in the queue: %s", job_id, exc)

    @staticmethod
    def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])

    def status(self) -> QueueStatus:
        """What /healthz reports about the manager."""
        return QueueStatus(
            run_jobs=self.settings.run_jobs,
            max_concurrent_jobs=self.settings.max_concurrent_jobs,
            running=self.running_jobs(),
            alive=self._thread is not None and self._thread.is_alive(),
            error=self.last_error,
        )


__all__ = ["Driver", "JobFinishedError", "JobManager", "QueueSettings", "QueueStatus"]
