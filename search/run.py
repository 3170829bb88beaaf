"""Running a job: prepare (the stored plan, what the store already has), train (the rest on Ray Tune),
finish (solve, store the result). :func:`run_job` runs or resumes a job to a final state.

Running a job twice is safe: trainings already in the store (from this job or any other) are reused, so a
job whose driver died resumes by running it again and trains only what is missing. The run's control state
(cancel, interrupt) is a :class:`~search.control.JobControl` owned by whoever runs it (the CLI's Ctrl-C, a
driver's signal handler), not module globals.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.control import JobControl
from search.plan import Plan, PlannedTraining, make_plan
from search.records import Progress
from search.settings import default_runs_dir
from search.states import JobState, TrainingState
from search.store import JobRecord, Store
from search.submit import build_dataset, check_resources

if TYPE_CHECKING:  # ray is imported when a run trains, not when it only prepares or reads
    from search.ray_runner import TuneRunner

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]


class ProgressTracker:
    """A running job's counts, from sets of training keys: a training reported twice counts once."""

    def __init__(self, total: int, succeeded: set[str], reused: int) -> None:
        self.total = total
        self.reused = reused
        self.succeeded = set(succeeded)
        self.trained_now: set[str] = set()
        self.failed: set[str] = set()
        self.running: set[str] = set()
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def record(self, key: str, kind: str) -> bool:
        """Apply one training event; True when the counts of finished trainings changed."""
        with self.lock:
            if kind == "started":
                self.running.add(key)
                self.failed.discard(key)
                return False
            if kind not in ("succeeded", "failed"):
                return False
            self.running.discard(key)
            if kind == "succeeded":
                new = key not in self.succeeded
                self.succeeded.add(key)
                self.trained_now.add(key)
                self.failed.discard(key)
                return new
            if key in self.succeeded:  # a late failure of a retried trial that had already succeeded
                return False
            self.failed.add(key)
            return True

    def snapshot(self) -> Progress:
        with self.lock:
            elapsed = time.monotonic() - self.started
            done, failed, running = len(self.succeeded), len(self.failed), len(self.running)
            remaining = max(0, self.total - done - failed)
            estimate = None
            if remaining == 0:
                estimate = 0.0
            elif self.trained_now:
                estimate = round(elapsed / len(self.trained_now) * remaining, 1)
            return Progress(
                total=self.total,
                done=done,
                reused=self.reused,
                trained=max(0, done - self.reused),
                running=running,
                failed=failed,
                pending=max(0, remaining - running),
                elapsed_seconds=round(elapsed, 1),
                estimate_seconds=estimate,
            )


@dataclass
class Prepared:
    """What the run needs after preparing: the plan, and the trainings still to run."""

    plan: Plan
    todo: list[PlannedTraining]
    tracker: ProgressTracker


class JobRun:
    """One run of one job: :meth:`run` = :meth:`prepare`, :meth:`train`, :meth:`finish`.

    ``runner``: the process's :class:`~search.ray_runner.TuneRunner` (one per process; made here if not
    given). ``control``: cancel/interrupt flags of this run. ``on_progress``: called with every new
    :class:`~search.records.Progress` (a progress bar); the store gets it at most once a second and at every
    finished training.
    """

    def __init__(
        self,
        store: Store,
        job_id: str,
        *,
        runner: TuneRunner | None = None,
        control: JobControl | None = None,
        runs_dir: Path | None = None,
        max_retries: int = 2,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.runner = runner
        self.control = control or JobControl(job_id)
        self.runs_dir = runs_dir or default_runs_dir()
        self.max_retries = max_retries
        self.on_progress = on_progress
        self._last_write = 0.0

    def run(self) -> JobRecord:
        """Run (or resume) the job to a final state (or back to ``queued`` when interrupted).

        Never raises for problems of the job itself: they end in state FAILED with the reason in ``error``.
        """
        job = self.store.get_job(self.job_id)
        if job.state.is_final:
            return job
        if job.cancel_requested or self.control.cancelled:
            return self.store.update_job(self.job_id, state=JobState.CANCELLED)
        try:
            prepared = self.prepare(job)
            stopped = self.train(job, prepared)
            return stopped if stopped is not None else self.finish(job, prepared)
        except ValueError as exc:
            log.warning("job %s failed: %s", self.job_id, exc)
            return self.store.update_job(self.job_id, state=JobState.FAILED, error=str(exc))
        except Exception as exc:
            log.error("job %s crashed: %s\n%s", self.job_id, exc, traceback.format_exc())
            error = f"{type(exc).__name__}: {exc}"
            return self.store.update_job(self.job_id, state=JobState.FAILED, error=error)

    # ------------------------------------------------------------------ the three steps

    def prepare(self, job: JobRecord) -> Prepared:
        """The stored plan (planned again only if the dataset changed since submission, or for a job stored
        before plans were kept), the trainings linked to the job, and those still to train."""
        fingerprint = build_dataset(job.spec).fingerprint()  # the dataset, built once per run
        plan = job.plan
        if plan is None or plan.fingerprint != fingerprint:
            if plan is not None:
                log.warning("job %s: its dataset changed since submission; planning again", self.job_id)
            plan = make_plan(job.spec, fingerprint)
        specs = plan.specs()
        records = self.store.ensure_trainings(specs)
        linked = {jt.training.key for jt in self.store.job_trainings(self.job_id)}
        already = {k for k, r in records.items() if r.state == TrainingState.SUCCEEDED}
        self.store.link_job_trainings(self.job_id, list(specs), reused=already - linked)
        reused = sum(1 for jt in self.store.job_trainings(self.job_id) if jt.reused)
        todo = [t for t in plan.trainings if records[t.key].state != TrainingState.SUCCEEDED]
        self.store.reset_stale_trainings([t.key for t in todo])
        tracker = ProgressTracker(len(plan.trainings), already, reused)
        self.store.update_job(self.job_id, state=JobState.RUNNING, plan=plan, error=None)
        self.publish(tracker, force=True)
        log.info(
            "job %s: %d trainings planned, %d reused, %d to run",
            self.job_id,
            len(plan.trainings),
            len(already),
            len(todo),
        )
        return Prepared(plan, todo, tracker)

    def train(self, job: JobRecord, prepared: Prepared) -> JobRecord | None:
        """Train what is missing on Ray Tune; the job's record if the run stopped (cancelled, interrupted,
        unfinished trainings), None when every training ended (succeeded or failed after its retries)."""
        if not prepared.todo:
            return None
        from search import ray_runner

        ray_runner.ensure_ray()
        check_resources(job.spec.resources, ray_runner.cluster_capacity())
        if self.runner is None:
            self.runner = ray_runner.TuneRunner()
        tracker = prepared.tracker

        def hook(event: ray_runner.TrainingEvent) -> None:
            changed = tracker.record(event.key, event.kind)
            self.publish(tracker, force=changed)

        outcome = self.runner.run(
            [(t.key, prepared.plan.training_spec(t)) for t in prepared.todo],
            control=self.control,
            store=self.store,
            resources=job.spec.resources,
            storage_path=self.runs_dir,
            max_retries=self.max_retries,
            hook=hook,
        )
        self.publish(tracker, force=True)
        if self.control.cancelled or self.store.cancel_requested(self.job_id):
            return self.store.update_job(self.job_id, state=JobState.CANCELLED)
        if self.control.interrupted:
            log.info("job %s interrupted: it stays queued and resumes on the next start", self.job_id)
            return self.store.update_job(self.job_id, state=JobState.QUEUED)
        if outcome.unfinished:
            return self.store.update_job(
                self.job_id,
                state=JobState.FAILED,
                error=f"{len(outcome.unfinished)} trainings did not finish (the Ray run was interrupted); "
                "resume the job to train them",
            )
        return None

    def finish(self, job: JobRecord, prepared: Prepared) -> JobRecord:
        """Solve on the trained networks and store the result: the job succeeds."""
        from search.result import build_result

        self.publish(prepared.tracker, force=True)
        result = build_result(self.job_id, job.spec, prepared.plan, self.store.job_trainings(self.job_id))
        return self.store.update_job(self.job_id, state=JobState.SUCCEEDED, result=result)

    def publish(self, tracker: ProgressTracker, force: bool = False) -> None:
        """Show the progress (every call) and store it (at most once a second, or when ``force``)."""
        snapshot = tracker.snapshot()
        if self.on_progress is not None:
            self.on_progress(snapshot)
        now = time.monotonic()
        if force or now - self._last_write >= 1.0:
            self._last_write = now
            self.store.update_job(self.job_id, progress=snapshot)


def run_job(store: Store, job_id: str, **options: Any) -> JobRecord:
    """Run (or resume) the job ``job_id`` to a final state: ``JobRun(store, job_id, **options).run()``
    (options: ``runner``, ``control``, ``runs_dir``, ``max_retries``, ``on_progress``: see JobRun)."""
    return JobRun(store, job_id, **options).run()


__all__ = ["JobRun", "Prepared", "ProgressTracker", "run_job"]
