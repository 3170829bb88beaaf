"""Schema version and migrations: create the schema on first use, upgrade an older one, refuse a newer one.

The database records its schema version in the one-row ``schema_version`` table. When the code's
:data:`SCHEMA_VERSION` is higher, the upgrade functions registered in :data:`MIGRATIONS` run in order
(``MIGRATIONS[v]`` upgrades version ``v`` to ``v + 1``), all in the same transaction as the version bump, so a
failing upgrade leaves the database as it was (DDL is transactional on both SQLite and PostgreSQL). A
database newer than the code is refused with :class:`SchemaVersionError` rather than misread.

To change the schema later: change :mod:`search.store.tables` (what a fresh database gets), bump
:data:`SCHEMA_VERSION`, and register the matching upgrade for existing databases::

    @migration(1)
    def _add_trainings_node(conn: Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE trainings ADD COLUMN node VARCHAR(64)")
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, inspect, select, update

from search.store.errors import SchemaVersionError
from search.store.tables import Base, CheckpointRow, JobRow, LeaseRow, SchemaVersionRow, utcnow

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
"""The schema version this code writes and understands."""

Migration = Callable[[Connection], None]

MIGRATIONS: dict[int, Migration] = {}
"""``from_version -> upgrade``: each upgrade takes the schema from ``from_version`` to the next version."""

VERSION_TABLE = SchemaVersionRow.__tablename__


def migration(from_version: int) -> Callable[[Migration], Migration]:
    """Register ``fn`` as the upgrade from ``from_version`` to ``from_version + 1``."""

    def register(fn: Migration) -> Migration:
        if from_version in MIGRATIONS:
            raise ValueError(f"a migration from schema version {from_version} is already registered")
        MIGRATIONS[from_version] = fn
        return fn

    return register


def read_version(conn: Connection) -> int | None:
    """The schema version recorded in the database, or None where the store has not been created yet."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    version = conn.execute(select(SchemaVersionRow.version).where(SchemaVersionRow.id == 1)).scalar()
    if version is None:
        raise SchemaVersionError(f"table {VERSION_TABLE} exists but holds no version: the store is damaged")
    return int(version)


def prepare_schema(conn: Connection, where: str) -> int:
    """Create, upgrade or check the schema; returns the version the database is at afterwards.

    Must run inside a transaction that holds the backend's schema lock (two processes opening a new
    database at once must not both create it). ``where`` names the database in error messages.
    """
    target = SCHEMA_VERSION  # read at call time so tests can pretend to be a later version
    version = read_version(conn)
    if version is None:
        ours = sorted({t.name for t in Base.metadata.sorted_tables} & set(inspect(conn).get_table_names()))
        if ours:
            raise SchemaVersionError(
                f"{where} has table(s) {', '.join(ours)} but no {VERSION_TABLE} table: it was not created by "
                "taskgrouping; point TASKGROUP_DATABASE_URL at an empty database or schema"
            )
        Base.metadata.create_all(conn)
        conn.execute(SchemaVersionRow.__table__.insert().values(id=1, version=target, updated_at=utcnow()))
        log.info("created the results store schema (version %d) in %s", target, where)
        return target
    if version > target:
        raise SchemaVersionError(
            f"{where} has schema version {version}, newer than this taskgrouping understands ({target}): "
            "upgrade taskgrouping, or use another database"
        )
    start = version
    while version < target:
        upgrade = MIGRATIONS.get(version)
        if upgrade is None:
            raise SchemaVersionError(
                f"{where} has schema version {version} and no migration to {version + 1} is registered"
            )
        log.info("migrating the results store %s from schema version %d to %d", where, version, version + 1)
        upgrade(conn)
        version += 1
    if version != start:
        conn.execute(
            update(SchemaVersionRow)
            .where(SchemaVersionRow.id == 1)
            .values(version=version, updated_at=utcnow())
        )
    return version


@migration(1)
def _plans_kept_whole(conn: Connection) -> None:
    """Version 2 keeps a job's whole plan (its trainings and their keys); version 1 kept only the plan's
    summary, which is not a plan. Such plans are dropped (NULL): a job that has not finished plans again when
    it runs (on the dataset as it is then), and a finished job still has its plan summary in its result."""
    jobs = JobRow.__table__
    rows = conn.execute(select(jobs.c.seq, jobs.c.plan).where(jobs.c.plan.is_not(None))).all()
    stale = [seq for seq, plan in rows if not (isinstance(plan, dict) and "trainings" in plan)]
    for seq in stale:
        conn.execute(update(jobs).where(jobs.c.seq == seq).values(plan=None))
    if stale:
        log.info("dropped %d plan summaries of version-1 jobs (they plan again when they run)", len(stale))


@migration(2)
def _checkpoints_table(conn: Connection) -> None:
    """Version 3 records kept weights: the ``checkpoints`` table (training key, URI, size, sha256, time). No
    training of a version-2 store kept its weights, so the table starts empty."""
    CheckpointRow.__table__.create(conn)


@migration(3)
def _leases_table(conn: Connection) -> None:
    """Version 4 lets jobs share a training without both training it: the ``leases`` table (training key,
    holder, expiry). A version-3 store had no leases, so the table starts empty."""
    LeaseRow.__table__.create(conn)
