"""The store's kept weights: one ``checkpoints`` row per training that kept its best weights (schema 3).

A training whose spec asks for it (``TrainingSpec.keep_weights``) reports a Tune checkpoint; the driver's
callback records it here with :meth:`CheckpointMethods.record_checkpoint` (the folder's URI, the weights
file's size and sha256). The files live where Tune put them (the run's storage path); the row is what says
they exist.

**First checkpoint wins**, as the first success of a training does: a second ``record_checkpoint`` of the same
key keeps the stored row and returns it (the caller compares URIs and removes its own duplicate files).

**Which checkpoints are needed** (what ``taskgroup gc`` keeps; :meth:`CheckpointMethods.checkpoint_needs`): a
checkpoint is needed by a job when its training is linked to the job (``job_trainings``) and

* the job is ``queued`` or ``running`` (it may be finalizing right now), or
* the job ``succeeded`` and its result chose the training's network (same task set and capacity) at some
  budget (:func:`chosen_networks`: every budget today; the finalized budgets once finalize marks them).

Checkpoints of failed or cancelled jobs, of trainings no job links, and of networks no budget chose are not
needed: ``gc`` removes them (a resumed job trains again what it needs).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from search.records import JobResult
from search.states import JobState
from search.store.errors import TrainingNotFoundError
from search.store.models import CheckpointRecord
from search.store.tables import CheckpointRow, JobRow, JobTrainingRow, TrainingRow, utcnow

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

NetworkKey = tuple[frozenset[str], float]
_SHA256 = re.compile(r"[0-9a-f]{64}")
_IN_FLIGHT = frozenset({JobState.QUEUED.value, JobState.RUNNING.value})


def chosen_networks(result: JobResult) -> set[NetworkKey]:
    """The networks (task set, capacity) a succeeded job's result chose at some budget: the rule of which kept
    weights a finished job needs (one place to narrow it to finalized budgets)."""
    return {
        (frozenset(network.tasks), round(float(network.capacity), 9))
        for grouping in result.curve
        for network in grouping.networks
    }


def _record(row: CheckpointRow) -> CheckpointRecord:
    return CheckpointRecord.model_validate(row)


def _checked(key: str, uri: str, size_bytes: int, sha256: str) -> None:
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"checkpoint of {key}: uri must be a non-empty path or URI, got {uri!r}")
    if not isinstance(size_bytes, int) or isinstance(size_bytes, bool) or size_bytes < 0:
        raise ValueError(f"checkpoint of {key}: size_bytes must be an integer >= 0, got {size_bytes!r}")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"checkpoint of {key}: sha256 must be 64 lowercase hex digits, got {sha256!r}")


class CheckpointMethods:
    """The checkpoint methods of :class:`~search.store.Store` (a mixin: it uses the store's sessions)."""

    if TYPE_CHECKING:

        def _session(self, *, write: bool) -> AbstractContextManager[Session]: ...

        _backend: Any

    def record_checkpoint(self, key: str, *, uri: str, size_bytes: int, sha256: str) -> CheckpointRecord:
        """Record the kept weights of training ``key`` (stored at ``uri``); the first record of a key wins and
        is returned (compare its ``uri`` with yours). :class:`TrainingNotFoundError` for an unknown key."""
        from search.store.store import _check_key

        _checked(_check_key(key), uri, size_bytes, sha256)
        values = {"training_key": key, "uri": uri, "size_bytes": size_bytes, "sha256": sha256}
        with self._session(write=True) as session:
            if session.get(TrainingRow, key) is None:
                raise TrainingNotFoundError(key)
            stmt = self._backend.insert(CheckpointRow.__table__).on_conflict_do_nothing(
                index_elements=["training_key"]
            )
            session.execute(stmt, [{**values, "created_at": utcnow()}])
            row = session.get(CheckpointRow, key, populate_existing=True)
            assert row is not None
            return _record(row)

    def get_checkpoint(self, key: str) -> CheckpointRecord | None:
        """The kept weights of training ``key``, or None (it kept none, or they were removed)."""
        with self._session(write=False) as session:
            row = session.get(CheckpointRow, key)
            return None if row is None else _record(row)

    def get_checkpoints(self, keys: Iterable[str]) -> dict[str, CheckpointRecord]:
        """The kept weights among ``keys`` (keys without weights are left out): which trainings have weights,
        e.g. to train again the succeeded ones a finalize needs with weights."""
        from search.store.store import _check_keys, _chunks

        keys = _check_keys(keys)
        found: dict[str, CheckpointRecord] = {}
        with self._session(write=False) as session:
            for chunk in _chunks(keys):
                query = select(CheckpointRow).where(CheckpointRow.training_key.in_(chunk))
                found.update({row.training_key: _record(row) for row in session.scalars(query)})
        return {key: found[key] for key in keys if key in found}

    def list_checkpoints(self) -> list[CheckpointRecord]:
        """Every recorded checkpoint, oldest first."""
        query = select(CheckpointRow).order_by(CheckpointRow.created_at, CheckpointRow.training_key)
        with self._session(write=False) as session:
            return [_record(row) for row in session.scalars(query)]

    def delete_checkpoint(self, key: str) -> bool:
        """Forget the kept weights of ``key`` (the files are the caller's: ``search.weights``); True if a row
        was deleted."""
        with self._session(write=True) as session:
            deleted = session.execute(delete(CheckpointRow).where(CheckpointRow.training_key == key))
            return bool(deleted.rowcount)

    def checkpoint_needs(self) -> dict[str, list[str]]:
        """For every recorded checkpoint, the ids of the jobs that need it (module docstring): an empty list
        is a checkpoint no job needs. A succeeded job whose result cannot be read keeps all of its."""
        query = (
            select(CheckpointRow.training_key, JobRow.id, JobRow.state, TrainingRow.spec)
            .join(JobTrainingRow, JobTrainingRow.training_key == CheckpointRow.training_key)
            .join(JobRow, JobRow.id == JobTrainingRow.job_id)
            .join(TrainingRow, TrainingRow.key == CheckpointRow.training_key)
        )
        needs: dict[str, list[str]] = {record.training_key: [] for record in self.list_checkpoints()}
        chosen: dict[str, set[NetworkKey] | None] = {}
        with self._session(write=False) as session:
            links = session.execute(query).all()
            for _key, job_id, state, _spec in links:
                if state == JobState.SUCCEEDED.value and job_id not in chosen:
                    chosen[job_id] = self._chosen_by(session, job_id)
        by_job: dict[str, list[str]] = defaultdict(list)
        for key, job_id, state, spec in links:
            network = (frozenset(spec["tasks"]), round(float(spec.get("capacity", 1.0)), 9))
            wanted = chosen.get(job_id)
            chose_it = state == JobState.SUCCEEDED.value and (wanted is None or network in wanted)
            if state in _IN_FLIGHT or chose_it:
                by_job[key].append(job_id)
        for key, jobs in by_job.items():
            if key in needs:
                needs[key] = sorted(set(jobs))
        return needs

    @staticmethod
    def _chosen_by(session: Session, job_id: str) -> set[NetworkKey] | None:
        """The networks a succeeded job chose; None (keep all it links) when its result is unreadable."""
        data = session.scalar(select(JobRow.result).where(JobRow.id == job_id))
        if data is None:
            return None
        try:
            return chosen_networks(JobResult.model_validate(data))
        except ValueError as exc:  # pydantic's ValidationError: judge nothing we cannot read
            log.warning("job %s: result unreadable (%s); all its checkpoints are kept", job_id, exc)
            return None
