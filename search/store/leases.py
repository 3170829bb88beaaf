"""Leases: one training per network across jobs (schema 4).

Two running jobs that need the same untrained network must not both train it. Before a job's run sends a
training to Ray it *claims* the training's lease: one ``leases`` row per training key naming its holder (the
run) and an expiry. A claim succeeds when the key has no lease, its lease has expired, or the claimant already
holds it; it is one atomic statement on SQLite and PostgreSQL alike (an ``INSERT ... ON CONFLICT DO NOTHING``
for a free key, a conditional ``UPDATE`` for an expired one), so two claimants never both win. The holder
renews its leases while it trains (:meth:`LeaseMethods.renew_leases`) and releases them when the trainings
end; the other jobs wait, then reuse the result. A holder that dies stops renewing: once its lease expires,
the next claim takes it over and trains the network again.

Times are the database's clients' UTC clocks (``utcnow``): hosts that share a store need clocks within a
fraction of the lease length of each other (NTP), as any expiring lock does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, or_, select, update

from search.store.errors import TrainingNotFoundError
from search.store.tables import LeaseRow, TrainingRow, utcnow

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.orm import Session


def _check_owner(owner: str) -> str:
    if not isinstance(owner, str) or not owner or len(owner) > 128:
        raise ValueError(f"lease owner must be a non-empty string of at most 128 characters, got {owner!r}")
    return owner


def _check_seconds(seconds: float) -> float:
    if not isinstance(seconds, int | float) or not 0 < seconds <= 86400:
        raise ValueError(f"lease seconds must be in (0, 86400], got {seconds!r}")
    return float(seconds)


class LeaseMethods:
    """The lease methods of :class:`~search.store.Store` (a mixin: it uses the store's sessions)."""

    if TYPE_CHECKING:

        def _session(self, *, write: bool) -> AbstractContextManager[Session]: ...

        _backend: Any

    def claim_trainings(self, keys: Iterable[str], owner: str, seconds: float) -> list[str]:
        """Claim the leases of ``keys`` for ``owner`` for ``seconds``; the keys now held by ``owner`` (free,
        expired or already its own), in the order given. :class:`TrainingNotFoundError` for a key the store
        does not have."""
        from search.store.store import _check_keys, _chunks

        keys = _check_keys(keys)
        owner, seconds = _check_owner(owner), _check_seconds(seconds)
        now = utcnow()
        expires = now + timedelta(seconds=seconds)
        table = LeaseRow.__table__
        with self._session(write=True) as session:
            for chunk in _chunks(keys):
                known = set(session.scalars(select(TrainingRow.key).where(TrainingRow.key.in_(chunk))))
                unknown = [k for k in chunk if k not in known]
                if unknown:
                    raise TrainingNotFoundError(unknown[0])
            for chunk in _chunks(keys):
                session.execute(
                    update(LeaseRow)
                    .where(
                        LeaseRow.training_key.in_(chunk),
                        or_(LeaseRow.owner == owner, LeaseRow.expires_at < now),
                    )
                    .values(owner=owner, expires_at=expires)
                    .execution_options(synchronize_session=False)
                )
                rows = [{"training_key": k, "owner": owner, "expires_at": expires} for k in chunk]
                session.execute(self._backend.insert(table).on_conflict_do_nothing(), rows)
            held: set[str] = set()
            for chunk in _chunks(keys):
                query = select(LeaseRow.training_key).where(
                    and_(LeaseRow.training_key.in_(chunk), LeaseRow.owner == owner)
                )
                held.update(session.scalars(query))
        return [k for k in keys if k in held]

    def renew_leases(self, owner: str, seconds: float, keys: Iterable[str] | None = None) -> int:
        """Push the expiry of ``owner``'s leases (of ``keys``, or all of them) to ``seconds`` from now; how
        many it still held (a lease that expired and was taken over is not renewed)."""
        from search.store.store import _check_keys, _chunks

        owner, seconds = _check_owner(owner), _check_seconds(seconds)
        expires = utcnow() + timedelta(seconds=seconds)
        with self._session(write=True) as session:
            if keys is None:
                statement = update(LeaseRow).where(LeaseRow.owner == owner).values(expires_at=expires)
                return int(session.execute(statement).rowcount or 0)
            count = 0
            for chunk in _chunks(_check_keys(keys)):
                statement = (
                    update(LeaseRow)
                    .where(LeaseRow.owner == owner, LeaseRow.training_key.in_(chunk))
                    .values(expires_at=expires)
                    .execution_options(synchronize_session=False)
                )
                count += int(session.execute(statement).rowcount or 0)
            return count

    def release_leases(self, owner: str, keys: Iterable[str] | None = None) -> int:
        """Drop ``owner``'s leases (of ``keys``, or all of them); how many were dropped."""
        from search.store.store import _check_keys, _chunks

        owner = _check_owner(owner)
        with self._session(write=True) as session:
            if keys is None:
                return int(session.execute(delete(LeaseRow).where(LeaseRow.owner == owner)).rowcount or 0)
            count = 0
            for chunk in _chunks(_check_keys(keys)):
                statement = delete(LeaseRow).where(LeaseRow.owner == owner, LeaseRow.training_key.in_(chunk))
                count += int(session.execute(statement).rowcount or 0)
            return count

    def lease_holders(self, keys: Iterable[str]) -> dict[str, tuple[str, datetime]]:
        """``key -> (owner, expires_at)`` of the leases of ``keys`` (expired ones included; free keys left
        out)."""
        from search.store.store import _check_keys, _chunks

        out: dict[str, tuple[str, datetime]] = {}
        with self._session(write=False) as session:
            for chunk in _chunks(_check_keys(keys)):
                query = select(LeaseRow).where(LeaseRow.training_key.in_(chunk))
                out.update({row.training_key: (row.owner, row.expires_at) for row in session.scalars(query)})
        return out


__all__ = ["LeaseMethods"]
