"""The results store: jobs, trainings and which job used which training, in SQLite or PostgreSQL.

One :class:`Store` is shared by every thread of a process (the API's request threads and the job runner
thread): each call opens its own short session and transaction. Several processes may use the same database
at once (the Ray driver writes while the API reads): SQLite runs in WAL mode with writers serialised by
``BEGIN IMMEDIATE`` and a busy time-out; PostgreSQL uses row locks (``SELECT ... FOR UPDATE``) for every
read-modify-write.

Trainings are shared between jobs: the search layer keys each training by a hash of what determines its
outcome (dataset fingerprint, tasks, capacity, fidelity, training settings, seed), and a job that needs a key
already succeeded in the store reuses it instead of training again (DESIGN.md, data flow step 3). Each
finished training is written in its own transaction, so a crash loses at most the trainings in flight.
The job/training split follows Optuna's study/trial storage.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import DatabaseError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, defer, sessionmaker

from grouping.validation import format_validation_error
from search.plan import Plan
from search.records import JobResult, Progress
from search.spec import JobSpec
from search.store import migrations
from search.store.backends import WRITE_OPTION, resolve_url
from search.store.checkpoints import CheckpointMethods
from search.store.errors import (
    JobNotFoundError,
    MissingStoreError,
    StoreError,
    StoreUnavailableError,
    TrainingNotFoundError,
)
from search.store.leases import LeaseMethods
from search.store.models import (
    JOB_TRANSITIONS,
    JobInfo,
    JobRecord,
    JobState,
    JobTrainingRecord,
    TrainingRecord,
    TrainingState,
)
from search.store.tables import (
    JOB_ID_LENGTH,
    TRAINING_KEY_LENGTH,
    JobRow,
    JobTrainingRow,
    TrainingRow,
    utcnow,
)
from workers.spec import TrainingResult, TrainingSpec

log = logging.getLogger(__name__)

MAX_LIST_LIMIT = 1000
"""Largest page :meth:`Store.list_jobs` returns."""

_CHUNK = 500  # keys per IN (...) clause / rows per INSERT batch: well under SQLite's variable limit
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_T = TypeVar("_T")
_R = TypeVar("_R", bound=BaseModel)


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _first_non_finite(value: Any, path: str) -> str | None:
    """Where in ``value`` a NaN or infinity sits (``path[...]``), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path} = {value}"
    if isinstance(value, Mapping):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _first_non_finite(item, f"{path}[{key!r}]")
        if found:
            return found
    return None


def _as_json(field: str, value: Any, *, required_dict: bool = True) -> Any:
    """``value`` (a pydantic record, or plain data) as it reads back from a JSON column (tuples become lists,
    keys strings); ValueError if it cannot be stored. Non-finite floats are refused: PostgreSQL's JSON
    cannot hold them, and both backends must store the same data."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if required_dict and not isinstance(value, Mapping):
        raise ValueError(f"{field} must be a dict (a JSON object), got {type(value).__name__}")
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except ValueError:
        where = _first_non_finite(value, field)
        raise ValueError(
            f"{field} cannot be stored as JSON: {where} is not a finite number; store null or a finite "
            "value (or fail the training with an error)"
        ) from None
    except TypeError as exc:
        raise ValueError(f"{field} cannot be stored as JSON: {exc}") from None


def _typed(model: type[_R], field: str, value: Any) -> _R:
    """``value`` as a ``model`` record (a dict is validated): what cannot be read back is not written."""
    if isinstance(value, model):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{field} must be a dict (a JSON object) or a {model.__name__}, got {type(value).__name__}"
        )
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ValueError(f"{field} is not a valid {model.__name__}: {format_validation_error(exc)}") from None


def _read(model: type[_R], row: Any, what: str) -> _R:
    """A stored row as its typed record; a row this version cannot read is a StoreError naming it, never a
    crash of the caller."""
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        raise StoreError(
            f"{what} was stored by another version of taskgrouping and cannot be read: "
            f"{format_validation_error(exc)}"
        ) from None


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > TRAINING_KEY_LENGTH:
        raise ValueError(
            f"training key must be a non-empty string of at most {TRAINING_KEY_LENGTH} characters, "
            f"got {key!r}"
        )
    return key


def _check_keys(keys: Iterable[str]) -> list[str]:
    """Keys validated, duplicates dropped, first-seen order kept."""
    if isinstance(keys, str):
        raise ValueError("keys must be a list of training keys, not one string")
    return list(dict.fromkeys(_check_key(k) for k in keys))


def _check_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or len(job_id) > JOB_ID_LENGTH or not _JOB_ID.fullmatch(job_id):
        raise ValueError(
            f"job_id must be 1 to {JOB_ID_LENGTH} letters, digits, '_', '.' or '-' (not starting with a "
            f"punctuation mark), got {job_id!r}"
        )
    return job_id


def _job_state(state: Any, field: str = "state") -> JobState:
    try:
        return JobState(state)
    except ValueError:
        raise ValueError(f"{field} must be one of {', '.join(JobState)}, got {state!r}") from None


def new_job_id() -> str:
    """A fresh job id: 12 hex digits (48 random bits; a clash is retried)."""
    return uuid.uuid4().hex[:12]


class Store(CheckpointMethods, LeaseMethods):
    """Jobs, trainings and kept weights in a SQL database (see the module docstring and docs/store.md); the
    checkpoint methods are :class:`~search.store.checkpoints.CheckpointMethods`, the lease methods (one
    training per network across jobs) :class:`~search.store.leases.LeaseMethods`.

    ``url`` is the full database URL as opened (driver filled in, SQLite paths made absolute; it may hold a
    password: log :attr:`safe_url` instead). Use :func:`open_store` to pick the URL from the environment.
    """

    def __init__(self, url: str | None = None) -> None:
        parsed, self._backend = resolve_url(url)
        self.url: str = parsed.render_as_string(hide_password=False)
        self.safe_url: str = parsed.render_as_string(hide_password=True)
        self._engine = self._backend.create_engine(parsed)
        self._write_engine = self._engine.execution_options(**{WRITE_OPTION: True})
        self._reads = sessionmaker(self._engine, expire_on_commit=False, autoflush=True)
        self._writes = sessionmaker(self._write_engine, expire_on_commit=False, autoflush=True)
        self._lock: AbstractContextManager[Any] = (
            threading.RLock() if self._backend.serialises_threads(parsed) else nullcontext()
        )
        self._closed = False
        try:
            self._prepare_schema()
        except BaseException:
            self._engine.dispose()
            raise

    # ------------------------------------------------------------------ plumbing

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        if self._closed:
            raise StoreError(f"the results store {self.safe_url} is closed")
        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            reason = str(exc.orig).strip() if exc.orig is not None else str(exc)
            raise StoreUnavailableError(
                f"cannot use the results store {self.safe_url}: {reason}. Check that the database server is "
                "running and that TASKGROUP_DATABASE_URL (or --db) points at it"
            ) from exc

    @contextmanager
    def _session(self, *, write: bool) -> Iterator[Session]:
        """A session in one transaction, committed on success (writes start with the write lock on SQLite)."""
        maker = self._writes if write else self._reads
        with self._translate_errors(), self._lock, maker() as session, session.begin():
            yield session

    def _prepare_schema(self) -> int:
        try:
            with self._translate_errors(), self._lock, self._write_engine.begin() as conn:
                self._backend.lock_schema(conn)
                return migrations.prepare_schema(conn, self.safe_url)
        except DatabaseError as exc:  # e.g. SQLite's "file is not a database"
            reason = str(exc.orig).strip() if exc.orig is not None else str(exc)
            raise StoreError(f"cannot open the results store {self.safe_url}: {reason}") from exc

    def schema_version(self) -> int:
        """The schema version recorded in the database (equal to the code's after opening)."""
        with self._session(write=False) as session:
            version = migrations.read_version(session.connection())
        if version is None:
            raise StoreError(f"the results store {self.safe_url} has no schema_version table any more")
        return version

    def close(self) -> None:
        """Release every pooled connection; later calls raise :class:`StoreError`."""
        self._closed = True
        self._engine.dispose()

    # ------------------------------------------------------------------ jobs

    @staticmethod
    def _job(row: JobRow) -> JobRecord:
        return _read(JobRecord, row, f"job {row.id}")

    @staticmethod
    def _info(row: JobRow) -> JobInfo:
        return _read(JobInfo, row, f"job {row.id}")

    @staticmethod
    def _lock_job(session: Session, job_id: str) -> JobRow:
        row = session.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
        if row is None:
            raise JobNotFoundError(job_id)
        return row

    def create_job(self, spec: JobSpec, plan: Plan | None = None, job_id: str | None = None) -> JobRecord:
        """Store a new job in state ``queued`` with its whole plan; its progress starts at the plan's size.
        ``job_id`` defaults to 12 random hex digits.

        ValueError if ``job_id`` is given and already taken.
        """
        spec_data = _as_json("spec", _typed(JobSpec, "spec", spec))
        plan = None if plan is None else _typed(Plan, "plan", plan)
        plan_data = None if plan is None else _as_json("plan", plan)
        size = 0 if plan is None else plan.network_trainings
        progress = _as_json("progress", Progress(total=size, pending=size))
        given = job_id is not None
        for _ in range(5):
            candidate = _check_job_id(job_id) if given else new_job_id()
            row = JobRow(
                id=candidate,
                spec=spec_data,
                state=JobState.QUEUED.value,
                created_at=utcnow(),
                progress=progress,
                plan=plan_data,
                cancel_requested=False,
            )
            try:
                with self._session(write=True) as session:
                    session.add(row)
                    session.flush()
                    return self._job(row)
            except IntegrityError:
                if given:
                    raise ValueError(f"job_id {job_id!r} is already taken; pick another or omit it") from None
                log.warning("generated job id %s clashed with a stored job; drawing another", candidate)
        raise StoreError("could not draw a free job id in 5 attempts")  # pragma: no cover - 2^-48 odds

    def get_job(self, job_id: str) -> JobRecord:
        """The job; :class:`JobNotFoundError` (a KeyError, ``job <id> not found``) if absent."""
        with self._session(write=False) as session:
            row = session.scalar(select(JobRow).where(JobRow.id == job_id))
            if row is None:
                raise JobNotFoundError(job_id)
            return self._job(row)

    @staticmethod
    def _filtered(query: Select[Any], state: JobState | str | None) -> Select[Any]:
        return query if state is None else query.where(JobRow.state == _job_state(state).value)

    def list_jobs(
        self, state: JobState | str | None = None, limit: int = 50, offset: int = 0
    ) -> list[JobInfo]:
        """Jobs newest first (creation time, then insertion order), optionally of one state, one page; their
        plans and results are not loaded (:meth:`get_job` has them)."""
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, got {limit!r}")
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be a non-negative integer, got {offset!r}")
        query = self._filtered(select(JobRow).options(defer(JobRow.plan), defer(JobRow.result)), state)
        query = query.order_by(JobRow.created_at.desc(), JobRow.seq.desc()).limit(limit).offset(offset)
        with self._session(write=False) as session:
            return [self._info(row) for row in session.scalars(query)]

    def count_jobs(self, state: JobState | str | None = None) -> int:
        """How many jobs (of one state)."""
        query = self._filtered(select(func.count()).select_from(JobRow), state)
        with self._session(write=False) as session:
            return int(session.scalar(query) or 0)

    def job_counts(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state present, 0 where none): one grouped query."""
        query = select(JobRow.state, func.count()).group_by(JobRow.state)
        counts = dict.fromkeys(JobState, 0)
        with self._session(write=False) as session:
            for state, count in session.execute(query):
                counts[_job_state(state)] = int(count)
        return counts

    def job_ids(self, state: JobState | str | None = None) -> list[str]:
        """Ids of the jobs (of one state), oldest first; nothing else is read."""
        query = self._filtered(select(JobRow.id), state).order_by(JobRow.created_at, JobRow.seq)
        with self._session(write=False) as session:
            return list(session.scalars(query))

    def update_job(
        self,
        job_id: str,
        *,
        state: JobState | str | None = None,
        error: str | None = None,
        progress: Progress | None = None,
        plan: Plan | None = None,
        result: JobResult | None = None,
    ) -> JobRecord:
        """Change what is given (None leaves a field as it is); ``progress`` replaces the previous counts.

        ``started_at`` is set when the job first enters ``running``, ``finished_at`` when it enters a final
        state. Moves must follow :data:`~search.store.models.JOB_TRANSITIONS` (ValueError otherwise): a failed
        or cancelled job may be queued or run again (resume), which clears ``finished_at``, ``error`` and the
        cancel flag; a succeeded job stays succeeded.
        """
        new_state = None if state is None else _job_state(state)
        progress_data = (
            None if progress is None else _as_json("progress", _typed(Progress, "progress", progress))
        )
        plan_data = None if plan is None else _as_json("plan", _typed(Plan, "plan", plan))
        result_data = None if result is None else _as_json("result", _typed(JobResult, "result", result))
        if error is not None and not isinstance(error, str):
            raise ValueError(f"error must be a string, got {type(error).__name__}")
        with self._session(write=True) as session:
            row = self._lock_job(session, job_id)
            if new_state is not None:
                old = JobState(row.state)
                if new_state not in JOB_TRANSITIONS[old]:
                    allowed = ", ".join(sorted(JOB_TRANSITIONS[old]))
                    raise ValueError(f"job {job_id} is {old}: cannot become {new_state} (allowed: {allowed})")
                now = utcnow()
                if new_state is JobState.RUNNING and row.started_at is None:
                    row.started_at = now
                if new_state.is_final and not old.is_final:
                    row.finished_at = now
                if old.is_final and not new_state.is_final:
                    row.finished_at = None
                    row.error = None
                    row.cancel_requested = False
                row.state = new_state.value
            if error is not None:
                row.error = error
            if progress_data is not None:
                row.progress = progress_data
            if plan_data is not None:
                row.plan = plan_data
            if result_data is not None:
                row.result = result_data
            session.flush()
            return self._job(row)

    def request_cancel(self, job_id: str) -> JobRecord:
        """Ask the runner to cancel the job (it polls ``cancel_requested``); no effect on a finished job."""
        with self._session(write=True) as session:
            row = self._lock_job(session, job_id)
            if not JobState(row.state).is_final:
                row.cancel_requested = True
                session.flush()
            return self._job(row)

    def cancel_requested(self, job_id: str) -> bool:
        """Whether a cancel was requested for the job (what a running job's driver polls; one column)."""
        with self._session(write=False) as session:
            flag = session.scalar(select(JobRow.cancel_requested).where(JobRow.id == job_id))
        if flag is None:
            raise JobNotFoundError(job_id)
        return bool(flag)

    def unfinished_jobs(self) -> list[JobInfo]:
        """Jobs queued or running, oldest first: what to resume when the service starts."""
        query = (
            select(JobRow)
            .options(defer(JobRow.plan), defer(JobRow.result))
            .where(JobRow.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
            .order_by(JobRow.created_at, JobRow.seq)
        )
        with self._session(write=False) as session:
            return [self._info(row) for row in session.scalars(query)]

    # ------------------------------------------------------------------ trainings

    @staticmethod
    def _training(row: TrainingRow) -> TrainingRecord:
        return _read(TrainingRecord, row, f"training {row.key}")

    @staticmethod
    def _lock_training(session: Session, key: str) -> TrainingRow:
        row = session.scalar(select(TrainingRow).where(TrainingRow.key == key).with_for_update())
        if row is None:
            raise TrainingNotFoundError(key)
        return row

    @staticmethod
    def _select_trainings(session: Session, keys: Sequence[str]) -> dict[str, TrainingRow]:
        found: dict[str, TrainingRow] = {}
        for chunk in _chunks(keys):
            for row in session.scalars(select(TrainingRow).where(TrainingRow.key.in_(chunk))):
                found[row.key] = row
        return found

    def get_training(self, key: str) -> TrainingRecord | None:
        """The training with this key, or None."""
        with self._session(write=False) as session:
            row = session.get(TrainingRow, key)
            return None if row is None else self._training(row)

    def get_trainings(self, keys: Iterable[str]) -> dict[str, TrainingRecord]:
        """The stored trainings among ``keys`` (absent keys are left out), in the order of ``keys``."""
        keys = _check_keys(keys)
        with self._session(write=False) as session:
            rows = self._select_trainings(session, keys)
            return {key: self._training(rows[key]) for key in keys if key in rows}

    def ensure_trainings(self, specs: Mapping[str, TrainingSpec]) -> dict[str, TrainingRecord]:
        """Insert a ``pending`` training for every key not stored yet; return all of them, in the given order.

        A stored training is left as it is (its spec is not replaced). Safe when several jobs race to insert
        the same keys (``INSERT ... ON CONFLICT DO NOTHING``, keys in sorted order so writers never deadlock).
        """
        keys = _check_keys(specs)
        rows = [
            {
                "key": key,
                "spec": _as_json(f"specs[{key!r}]", _typed(TrainingSpec, f"specs[{key!r}]", specs[key])),
            }
            for key in keys
        ]
        if not rows:
            return {}
        now = utcnow()
        for row in rows:
            row.update(state=TrainingState.PENDING.value, attempts=0, created_at=now, updated_at=now)
        rows.sort(key=lambda r: r["key"])
        table = TrainingRow.__table__
        with self._session(write=True) as session:
            for chunk in _chunks(rows):
                stmt = self._backend.insert(table).on_conflict_do_nothing(index_elements=["key"])
                session.execute(stmt, list(chunk))
            found = self._select_trainings(session, keys)
            return {key: self._training(found[key]) for key in keys}

    def link_job_trainings(self, job_id: str, keys: Iterable[str], reused: Iterable[str] = ()) -> None:
        """Record that the job uses these trainings, in this order; ``reused`` marks the ones it found done.

        Idempotent: a key already linked to the job keeps its first link, reused flag included, so a resumed
        job does not count the trainings it trained itself before the crash as reused. Unknown keys raise
        :class:`TrainingNotFoundError` (insert them with :meth:`ensure_trainings` first).
        """
        keys = _check_keys(keys)
        reused_set = set(_check_keys(reused))
        if not reused_set <= set(keys):
            extra = sorted(reused_set - set(keys))
            raise ValueError(f"reused keys must be among keys; not in keys: {', '.join(extra[:5])}")
        with self._session(write=True) as session:
            self._lock_job(session, job_id)  # serialises links to one job (positions stay consecutive)
            linked = set(
                session.scalars(select(JobTrainingRow.training_key).where(JobTrainingRow.job_id == job_id))
            )
            new = [k for k in keys if k not in linked]
            if not new:
                return
            stored = self._select_trainings(session, new)
            missing = [k for k in new if k not in stored]
            if missing:
                raise TrainingNotFoundError(missing[0])
            last = session.scalar(
                select(func.max(JobTrainingRow.position)).where(JobTrainingRow.job_id == job_id)
            )
            start = -1 if last is None else int(last)
            now = utcnow()
            links = [
                {
                    "job_id": job_id,
                    "training_key": k,
                    "position": start + 1 + i,
                    "reused": k in reused_set,
                    "linked_at": now,
                }
                for i, k in enumerate(new)
            ]
            stmt = self._backend.insert(JobTrainingRow.__table__).on_conflict_do_nothing()
            for chunk in _chunks(links):
                session.execute(stmt, list(chunk))

    def mark_reused(self, job_id: str, keys: Iterable[str]) -> None:
        """Mark the job's links to these trainings as reused: another job trained them while this one
        waited for them (one training per network across jobs)."""
        keys = _check_keys(keys)
        with self._session(write=True) as session:
            for chunk in _chunks(keys):
                session.execute(
                    update(JobTrainingRow)
                    .where(JobTrainingRow.job_id == job_id, JobTrainingRow.training_key.in_(chunk))
                    .values(reused=True)
                    .execution_options(synchronize_session=False)
                )

    def job_trainings(self, job_id: str) -> list[JobTrainingRecord]:
        """The job's trainings in the order they were linked; JobNotFoundError if the job is absent."""
        query = (
            select(JobTrainingRow.reused, TrainingRow)
            .join(TrainingRow, TrainingRow.key == JobTrainingRow.training_key)
            .where(JobTrainingRow.job_id == job_id)
            .order_by(JobTrainingRow.position)
        )
        with self._session(write=False) as session:
            if session.scalar(select(JobRow.seq).where(JobRow.id == job_id)) is None:
                raise JobNotFoundError(job_id)
            return [
                JobTrainingRecord(training=self._training(row), reused=bool(reused))
                for reused, row in session.execute(query)
            ]

    def mark_training_running(self, key: str) -> TrainingRecord:
        """State ``running``, ``attempts`` + 1, ``started_at`` now (clears a previous error).

        A training already ``succeeded`` is returned unchanged: check ``state`` on the returned record to
        skip work another job finished meanwhile.
        """
        with self._session(write=True) as session:
            row = self._lock_training(session, _check_key(key))
            if row.state == TrainingState.SUCCEEDED.value:
                return self._training(row)
            now = utcnow()
            row.state = TrainingState.RUNNING.value
            row.attempts += 1
            row.started_at = now
            row.finished_at = None
            row.error = None
            row.updated_at = now
            session.flush()
            return self._training(row)

    def finish_training(self, key: str, result: TrainingResult) -> TrainingRecord:
        """Store a success (its own transaction), with the result's device and wall seconds. First success
        wins: if the training already succeeded, the stored result is kept and returned (compare
        ``record.result`` to tell)."""
        result = _typed(TrainingResult, "result", result)
        wall_seconds, device = result.wall_seconds, result.device
        if not (math.isfinite(wall_seconds) and wall_seconds >= 0):
            raise ValueError(f"wall_seconds must be a finite number >= 0, got {wall_seconds!r}")
        data = _as_json("result", result)
        with self._session(write=True) as session:
            row = self._lock_training(session, _check_key(key))
            if row.state == TrainingState.SUCCEEDED.value:
                log.info("training %s already succeeded; keeping the first result", key)
                return self._training(row)
            now = utcnow()
            row.state = TrainingState.SUCCEEDED.value
            row.result = data
            row.device = device
            row.wall_seconds = float(wall_seconds)
            row.error = None
            row.attempts = max(row.attempts, 1)
            row.finished_at = now
            row.updated_at = now
            session.flush()
            return self._training(row)

    def fail_training(self, key: str, error: str) -> TrainingRecord:
        """Store a failure with its error; a training that already succeeded is left as it is."""
        if not isinstance(error, str):
            raise ValueError(f"error must be a string, got {type(error).__name__}")
        with self._session(write=True) as session:
            row = self._lock_training(session, _check_key(key))
            if row.state == TrainingState.SUCCEEDED.value:
                log.info("training %s already succeeded; ignoring the later failure: %s", key, error)
                return self._training(row)
            now = utcnow()
            row.state = TrainingState.FAILED.value
            row.error = error
            row.attempts = max(row.attempts, 1)
            row.finished_at = now
            row.updated_at = now
            session.flush()
            return self._training(row)

    def reset_stale_trainings(self, keys: Iterable[str]) -> int:
        """Put the given trainings that are ``running`` back to ``pending`` (after a crash, before resuming).

        Pass only the keys of the job being resumed: a training another live job is running would be reset
        too. Returns how many were reset.
        """
        keys = sorted(_check_keys(keys))
        count = 0
        now = utcnow()
        with self._session(write=True) as session:
            for chunk in _chunks(keys):
                stmt = (
                    update(TrainingRow)
                    .where(TrainingRow.key.in_(chunk), TrainingRow.state == TrainingState.RUNNING.value)
                    .values(state=TrainingState.PENDING.value, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                count += session.execute(stmt).rowcount or 0
        if count:
            log.info("reset %d stale running training(s) to pending", count)
        return count


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open (and create or migrate on first use) the results store.

    ``url`` defaults to ``$TASKGROUP_DATABASE_URL``, else ``sqlite:///taskgroup.db`` in the working folder.
    ``create=False`` (commands that only read) refuses a SQLite file that does not exist instead of creating
    an empty store there. ValueError for a malformed URL or an unsupported dialect;
    :class:`StoreUnavailableError` when the server does not answer (or, with ``create=False``, the file is
    missing); :class:`SchemaVersionError` when the database is newer than this code.
    """
    if not create:
        parsed, _ = resolve_url(url)
        database = parsed.database or ""
        file = parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
        if file and not Path(database).exists():
            raise MissingStoreError(
                f"no results store at {database}: nothing was stored there yet; run `taskgroup search` "
                "first, or point --db (or TASKGROUP_DATABASE_URL) at your store"
            )
    return Store(url)
