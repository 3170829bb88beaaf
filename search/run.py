"""Running a job: prepare (the stored plan, what the store already has), train (the rest on Ray Tune),
solve, finalize the budgets it asks for (:mod:`search.finalize`), store the result. :func:`run_job` runs or
resumes a job to a final state.

Running a job twice is safe: trainings already in the store (from this job or any other) are reused, so a
job whose driver died resumes by running it again and trains only what is missing. The run's control state
(cancel, interrupt) is a :class:`~search.control.JobControl` owned by whoever runs it (the CLI's Ctrl-C, a
driver's signal handler), not module globals.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grouping.strategies import Strategy
from search import metrics
from search.baselines import priced
from search.control import JobControl
from search.joblog import job_context
from search.lease import LeaseKeeper
from search.measurements import measurements
from search.plan import Plan, PlannedTraining, make_plan
from search.progress import ProgressTracker
from search.records import JobResult, Progress
from search.settings import default_runs_dir, lease_seconds
from search.states import JobState, TrainingState
from search.store import JobRecord, Store
from search.submit import build_dataset, check_resources

if TYPE_CHECKING:  # ray is imported when a run trains, not when it only prepares or reads
    from search.ray_runner import TuneRunner
    from workers.spec import TrainingSpec

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]
Needed = Callable[[list[str]], set[str]]
"""Which of these training keys still need training (others were trained meanwhile, maybe by another job)."""


@dataclass
class Prepared:
    """What the run carries from step to step: the plan (growing by rounds), the approximation's strategy
    and the progress."""

    plan: Plan
    strategy: Strategy
    tracker: ProgressTracker


class JobRun:
    """One run of one job: :meth:`run` = :meth:`prepare`, :meth:`train`, :meth:`solve`, then :meth:`finalize`
    when the job finalizes budgets.

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
        Everything it logs carries the job's id (:mod:`search.joblog`).
        """
        with job_context(self.job_id):
            return self._run()

    def _run(self) -> JobRecord:
        job = self.store.get_job(self.job_id)
        if job.state.is_final:
            return job
        if job.cancel_requested or self.control.cancelled:
            return self.store.update_job(self.job_id, state=JobState.CANCELLED)
        try:
            prepared = self.prepare(job)
            stopped = self.search(job, prepared)
            if stopped is None and prepared.plan.baselines:
                stopped = self.baselines(job, prepared)
            if stopped is not None:
                return stopped
            result = self.solve(job, prepared)
            if job.spec.finalize_budgets:
                stopped, result = self.finalize(job, prepared, result)
                if stopped is not None:
                    return stopped
            return self.store.update_job(self.job_id, state=JobState.SUCCEEDED, result=result)
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
        before plans were kept) and the approximation's strategy."""
        dataset = build_dataset(job.spec)  # the dataset, built once per run
        fingerprint = dataset.fingerprint()
        plan = job.plan
        if plan is None or plan.fingerprint != fingerprint:
            if plan is not None:
                log.warning("job %s: its dataset changed since submission; planning again", self.job_id)
            plan = make_plan(job.spec, fingerprint)
        plan = priced(plan, dataset)  # the baselines' costs (already there unless planned again)
        self.store.update_job(self.job_id, state=JobState.RUNNING, plan=plan, error=None)
        return Prepared(plan, job.spec.strategy(), self._resumed_progress(plan))

    def _resumed_progress(self, plan: Plan) -> ProgressTracker:
        """The progress a run starts from: the plan's trainings this job already has succeeded (an earlier
        run of it trained or reused them; the strategy will not ask for them again)."""
        planned = plan.by_key()
        done = [
            jt
            for jt in self.store.job_trainings(self.job_id)
            if jt.training.key in planned and jt.training.state == TrainingState.SUCCEEDED
        ]
        keys = [jt.training.key for jt in done]
        return ProgressTracker(keys, keys, reused=sum(jt.reused for jt in done))

    def search(self, job: JobRecord, prepared: Prepared) -> JobRecord | None:
        """The search's rounds: the strategy asks for trainings from what is measured, they train (those in
        the store are reused), until it asks for nothing more; the job's record if the run stopped. A
        resumed run hands the stored measurements to the strategy, which asks only for what is missing."""
        spec, failed, asked = job.spec, [], set()
        while True:
            measured = measurements(spec, prepared.plan, self.store.job_trainings(self.job_id))
            round_ = prepared.strategy.next_round(measured, failed)
            if round_ is None:
                return None
            requests = [r for r in round_.requests if r.key() not in asked]
            failed += [r for r in round_.requests if r.key() in asked]  # asked again: its result is unusable
            asked |= {r.key() for r in requests}
            if not requests:
                continue
            known = prepared.plan.by_key()
            if any(prepared.plan.from_request(r).key not in known for r in requests):
                prepared.plan = prepared.plan.extended(requests)
                self.store.update_job(self.job_id, plan=prepared.plan)
            planned = [prepared.plan.from_request(r) for r in requests]
            todo = self._start_round(job, prepared, round_.index, round_.why, planned)
            stopped = self.train(job, self._work(job, prepared.plan, todo), prepared.tracker)
            if stopped is not None:
                return stopped
            states = self.store.get_trainings([t.key for t in todo])
            failed += [t.request(spec.tasks) for t in todo if states[t.key].state == TrainingState.FAILED]

    def _start_round(
        self, job: JobRecord, prepared: Prepared, index: int, why: str, planned: list[PlannedTraining]
    ) -> list[PlannedTraining]:
        """Link a round's trainings to the job (those already succeeded are reused) and count them in the
        progress; the trainings still to run."""
        keys = [t.key for t in planned]
        already, reused = self._link(prepared.plan, planned)
        todo = [t for t in planned if t.key not in already]
        labels = [t.request(job.spec.tasks).label() for t in planned]
        prepared.tracker.add_round(index, why, keys, labels, already, reused)
        self.publish(prepared.tracker, force=True)
        log.info(
            "job %s: round %d: %d trainings, %d reused, %d to run (%s)",
            self.job_id,
            index,
            len(planned),
            len(already),
            len(todo),
            why,
        )
        return todo

    def _link(self, plan: Plan, planned: Sequence[PlannedTraining]) -> tuple[set[str], int]:
        """Store ``planned`` (a round's or the baselines' trainings) and link them to the job, those already
        succeeded (by any job) as reused; a stale unfinished one is reset. The keys already succeeded, and
        how many of ``planned`` the job counts as reused."""
        keys = [t.key for t in planned]
        records = self.store.ensure_trainings({t.key: plan.training_spec(t) for t in planned})
        linked = {jt.training.key for jt in self.store.job_trainings(self.job_id)}
        done = {k for k in keys if records[k].state == TrainingState.SUCCEEDED}
        self.store.link_job_trainings(self.job_id, keys, reused=done - linked)
        metrics.count_reused(len(done - linked))
        self._reset_stale([k for k in keys if k not in done])
        links = self.store.job_trainings(self.job_id)
        wanted = set(keys)
        return done, sum(1 for jt in links if jt.reused and jt.training.key in wanted)

    def baselines(self, job: JobRecord, prepared: Prepared) -> JobRecord | None:
        """Train the stronger baselines (:mod:`search.baselines`) once the search's rounds have ended, in
        their own progress phase: those already in the store (any job's) are reused, the rest run on Ray
        Tune; the job's record if the run stopped. They are linked to the job but are not the search's
        trainings, so its strategy never measures them. One the search itself trained (the job's own
        settings at full fidelity) is not trained twice."""
        searched = prepared.plan.by_key()
        planned = [b for b in prepared.plan.baselines if b.key not in searched]
        if not planned:
            return None
        keys = [b.key for b in planned]
        done, reused = self._link(prepared.plan, planned)
        todo = [b for b in planned if b.key not in done]
        tracker = ProgressTracker(keys, done, reused, phase="baselines")
        names = ", ".join(dict.fromkeys(b.name for b in planned))
        tracker.add_round(1, f"stronger baselines: {names}", [], [], [], 0)
        self.publish(tracker, force=True)
        log.info("job %s: baselines: %d trainings, %d to run (%s)", self.job_id, len(keys), len(todo), names)
        return self.train(job, self._work(job, prepared.plan, todo), tracker)

    @staticmethod
    def _work(
        job: JobRecord, plan: Plan, trainings: list[PlannedTraining], keep_weights: bool = False
    ) -> list[tuple[str, TrainingSpec]]:
        """(key, spec) of each training to run; weights kept when asked or when the job keeps them all."""
        keep = keep_weights or job.spec.keep_weights == "all"
        return [(t.key, plan.training_spec(t).model_copy(update={"keep_weights": keep})) for t in trainings]

    def train(
        self,
        job: JobRecord,
        work: list[tuple[str, TrainingSpec]],
        tracker: ProgressTracker,
        needed: Needed | None = None,
    ) -> JobRecord | None:
        """Train ``work`` on Ray Tune, one training per network across jobs: a training another live run
        holds the lease of is waited for and reused (``needed(keys)`` says which keys still need training;
        default: those not succeeded), an expired lease taken over. The job's record if the run stopped
        (cancelled, interrupted, unfinished trainings), None when every training ended (succeeded, or failed
        after its retries)."""
        if not work:
            return None
        from search import ray_runner

        ray_runner.ensure_ray()
        check_resources(job.spec.resources, ray_runner.cluster_capacity())
        if self.runner is None:
            self.runner = ray_runner.TuneRunner()
        needed = needed or self._not_succeeded
        pending = dict(work)

        def hook(event: ray_runner.TrainingEvent) -> None:
            metrics.count_event(event.kind, event.detail)
            changed = tracker.record(event.key, event.kind)
            self.publish(tracker, force=changed)

        with LeaseKeeper(self.store, self.job_id, lease_seconds()) as leases:
            while pending:
                still = needed(list(pending))
                meanwhile = [k for k in pending if k not in still]  # another job trained them
                if meanwhile:
                    self.store.mark_reused(self.job_id, meanwhile)
                    metrics.count_reused(len(meanwhile))
                for key in meanwhile:
                    tracker.record(key, "reused")
                    del pending[key]
                claimed = leases.claim(list(pending)) if pending else []
                if not claimed:
                    if pending and not self._wait_for_others(pending, leases.seconds, tracker):
                        break  # stopped while waiting
                    continue
                outcome = self.runner.run(
                    [(k, pending[k]) for k in claimed],
                    control=self.control,
                    store=self.store,
                    resources=job.spec.resources,
                    storage_path=self.runs_dir,
                    max_retries=self.max_retries,
                    hook=hook,
                )
                leases.release(claimed)
                if self._stopped() or outcome.unfinished:
                    return self._stop_record(len(outcome.unfinished))
                for key in claimed:  # succeeded, or failed after its retries: not claimed again
                    del pending[key]
        self.publish(tracker, force=True)
        return self._stop_record(0) if self._stopped() else None

    def _reset_stale(self, keys: list[str]) -> None:
        """Put back to pending the trainings left ``running`` by a dead run: those no live run holds the
        lease of (another job's run may be training them right now)."""
        now = datetime.now(UTC)
        live = {k for k, (_, expires) in self.store.lease_holders(keys).items() if expires > now}
        self.store.reset_stale_trainings([k for k in keys if k not in live])

    def _not_succeeded(self, keys: list[str]) -> set[str]:
        records = self.store.get_trainings(keys)
        return {k for k in keys if records[k].state != TrainingState.SUCCEEDED}

    def _wait_for_others(
        self, pending: dict[str, TrainingSpec], seconds: float, tracker: ProgressTracker
    ) -> bool:
        """Wait (a few seconds at most) while other runs hold the leases of every pending training; False if
        the run was stopped meanwhile."""
        holders = self.store.lease_holders(list(pending))
        log.info(
            "job %s: waiting for %d training(s) other jobs are training (%s)",
            self.job_id,
            len(pending),
            ", ".join(sorted({owner.split(":")[0] for owner, _ in holders.values()})[:5]),
        )
        self.publish(tracker, force=False)
        deadline = time.monotonic() + min(5.0, seconds / 4)
        while time.monotonic() < deadline:
            if self._stopped():
                return False
            time.sleep(0.2)
        return not self._stopped()

    def _stopped(self) -> bool:
        return self.control.cancelled or self.control.interrupted or self.store.cancel_requested(self.job_id)

    def _stop_record(self, unfinished: int) -> JobRecord | None:
        """The job's record once a run stopped: cancelled, back to queued (interrupted), or failed with
        trainings left unfinished; None when it did not stop."""
        if self.control.cancelled or self.store.cancel_requested(self.job_id):
            return self.store.update_job(self.job_id, state=JobState.CANCELLED)
        if self.control.interrupted:
            log.info("job %s interrupted: it stays queued and resumes on the next start", self.job_id)
            return self.store.update_job(self.job_id, state=JobState.QUEUED)
        if unfinished:
            return self.store.update_job(
                self.job_id,
                state=JobState.FAILED,
                error=f"{unfinished} trainings did not finish (the Ray run was interrupted); resume the job "
                "to train them",
            )
        return None

    def solve(self, job: JobRecord, prepared: Prepared) -> JobResult:
        """The result of the search: the strategy's loss table from the measurements, solved."""
        from search.result import search_result

        self.publish(prepared.tracker, force=True)
        return search_result(self.job_id, job.spec, prepared.plan, self.store.job_trainings(self.job_id))

    def finalize(
        self, job: JobRecord, prepared: Prepared, result: JobResult
    ) -> tuple[JobRecord | None, JobResult]:
        """Train the finalized budgets' chosen networks to the end with their weights kept
        (:mod:`search.finalize`) and add their measurements to the result; the job's record instead if the
        run stopped. A resumed run plans the same trainings (the search's result is solved again from the
        same stored trainings) and runs only what has not finished."""
        from search.finalize import finalize_trainings, measure, to_train

        planned = finalize_trainings(job.spec, prepared.plan, result)
        unique = list({t.key: t for budget in planned.values() for t in budget}.values())
        records = self.store.ensure_trainings({t.key: prepared.plan.training_spec(t) for t in unique})
        linked = {jt.training.key for jt in self.store.job_trainings(self.job_id)}
        todo = to_train(self.store, unique, job.spec.seed)
        running = {t.key for t in todo}
        done = {k for k, r in records.items() if r.state == TrainingState.SUCCEEDED and k not in running}
        self.store.link_job_trainings(self.job_id, [t.key for t in unique], reused=done - linked)
        metrics.count_reused(len(done - linked))
        self._reset_stale(sorted(running))
        tracker = ProgressTracker([t.key for t in unique], done, len(done), phase="finalize")
        self.publish(tracker, force=True)
        log.info(
            "job %s: finalize %s SNT: %d trainings, %d to run",
            self.job_id,
            ", ".join(f"{b:g}" for b in planned),
            len(unique),
            len(todo),
        )
        by_key = {t.key: t for t in todo}

        def needed(keys: list[str]) -> set[str]:  # trained meanwhile by another job (with weights) or not
            return {t.key for t in to_train(self.store, [by_key[k] for k in keys], job.spec.seed)}

        work = self._work(job, prepared.plan, todo, keep_weights=True)
        stopped = self.train(job, work, tracker, needed)
        if stopped is not None:
            return stopped, result
        finalized = measure(job.spec, result, planned, self.store.job_trainings(self.job_id))
        return None, result.model_copy(update={"finalized": finalized})

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


__all__ = ["JobRun", "Prepared", "ProgressTracker", "run_job"]  # ProgressTracker: search.progress
