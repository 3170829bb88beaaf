"""Database URLs and what differs between the backends (SQLite, PostgreSQL), as a registry.

Each backend knows how to normalise its URL, build its engine (pooling, pragmas, time-outs), begin a write
transaction that serialises writers, take the schema lock, and build an ``INSERT ... ON CONFLICT DO
NOTHING``. Everything else in the store is backend-neutral SQLAlchemy.
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

ENV_VAR = "TASKGROUP_DATABASE_URL"
DEFAULT_URL = "sqlite:///taskgroup.db"
EXAMPLES = "sqlite:///taskgroup.db or postgresql+psycopg://user:password@host:5432/dbname"

# Execution option that marks an engine whose transactions write (see SQLiteBackend.begin).
WRITE_OPTION = "taskgroup_write"

# json.dumps refuses NaN and infinities: PostgreSQL's JSON rejects them, so SQLite must too (same data).
json_serializer = partial(json.dumps, allow_nan=False)


def mask_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for error messages of URLs that do not even parse)."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


class Backend(ABC):
    """What one database dialect needs beyond plain SQLAlchemy."""

    drivers: ClassVar[tuple[str, ...]]
    """Accepted ``dialect+driver`` names; the first is the canonical one."""

    @abstractmethod
    def normalise(self, url: URL) -> URL:
        """The canonical URL (driver filled in, relative paths made absolute); ValueError if unusable."""

    @abstractmethod
    def create_engine(self, url: URL) -> Engine:
        """An engine configured for many threads and processes sharing the database."""

    @abstractmethod
    def insert(self, table: Table) -> Any:
        """The dialect's INSERT construct (it has ``on_conflict_do_nothing``)."""

    @abstractmethod
    def lock_schema(self, conn: Connection) -> None:
        """Hold a lock, until the transaction ends, that serialises schema creation and migration."""

    def serialises_threads(self, url: URL) -> bool:
        """True where one Python lock must serialise every session (a shared in-memory SQLite connection)."""
        return False

    @staticmethod
    def _common_engine_kwargs() -> dict[str, Any]:
        return {"json_serializer": json_serializer, "future": True}


class SQLiteBackend(Backend):
    """A SQLite file: WAL (readers never block the writer), foreign keys, busy time-out, IMMEDIATE writes.

    Writes begin with ``BEGIN IMMEDIATE``: a write transaction takes the write lock at its start, waiting up
    to the busy time-out for another writer (thread or process), instead of starting as a reader and failing
    with ``database is locked`` (SQLITE_BUSY_SNAPSHOT, which the busy time-out does not cover) when it tries
    to write after another connection committed. Reads begin with a plain ``BEGIN``.
    """

    drivers = ("sqlite+pysqlite", "sqlite")
    busy_timeout_s: float = 30.0

    def normalise(self, url: URL) -> URL:
        url = url.set(drivername=self.drivers[0])
        database = url.database or ""
        if self._in_memory(url):
            return url
        path = Path(database).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.parent.is_dir():
            raise ValueError(
                f"results store URL: the folder {path.parent} of the SQLite file does not exist; "
                f"create it or point {ENV_VAR} elsewhere"
            )
        return url.set(database=str(path))

    @staticmethod
    def _in_memory(url: URL) -> bool:
        return (url.database or "") in ("", ":memory:")

    def serialises_threads(self, url: URL) -> bool:
        return self._in_memory(url)

    def create_engine(self, url: URL) -> Engine:
        memory = self._in_memory(url)
        kwargs: dict[str, Any] = self._common_engine_kwargs()
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": self.busy_timeout_s}
        if memory:
            # One connection shared by every thread, or each connection would see its own empty database.
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        busy_ms = int(self.busy_timeout_s * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event, not the sqlite3 module, decide how transactions start.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
                cursor.execute("PRAGMA foreign_keys=ON")
                if not memory:
                    cursor.execute("PRAGMA journal_mode=WAL")
                    # NORMAL is durable across process crashes in WAL mode (only power loss may drop the last
                    # commits) and avoids an fsync per committed training.
                    cursor.execute("PRAGMA synchronous=NORMAL")
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def lock_schema(self, conn: Connection) -> None:
        """Nothing to do: the schema is prepared in a write transaction, which BEGIN IMMEDIATE serialises."""

    def insert(self, table: Table) -> Insert:
        return sqlite.insert(table)


class PostgreSQLBackend(Backend):
    """PostgreSQL through psycopg 3: pre-ping (survives server restarts), connect time-out, row locks."""

    drivers = ("postgresql+psycopg", "postgresql", "postgres")
    connect_timeout_s: int = 10
    # Arbitrary constant naming the advisory lock that serialises schema creation and migration.
    schema_lock_id: int = 0x7A5C_6E0B

    def normalise(self, url: URL) -> URL:
        if not url.database:
            raise ValueError(f"results store URL needs a database name, e.g. {EXAMPLES.split(' or ')[1]}")
        return url.set(drivername=self.drivers[0])

    def create_engine(self, url: URL) -> Engine:
        kwargs = self._common_engine_kwargs()
        kwargs["pool_pre_ping"] = True
        if "connect_timeout" not in url.query:
            kwargs["connect_args"] = {"connect_timeout": self.connect_timeout_s}
        return create_engine(url, **kwargs)

    def lock_schema(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": self.schema_lock_id})

    def insert(self, table: Table) -> Insert:
        return postgresql.insert(table)


BACKENDS: Mapping[str, type[Backend]] = MappingProxyType(
    {"sqlite": SQLiteBackend, "postgresql": PostgreSQLBackend}
)
"""Dialect name -> backend class."""


def resolve_url(url: str | None = None) -> tuple[URL, Backend]:
    """The URL (argument, else ``$TASKGROUP_DATABASE_URL``, else ``sqlite:///taskgroup.db``) and its backend.

    Raises ValueError for a malformed URL or an unsupported dialect or driver, saying what is accepted.
    """
    raw = url if url is not None else (os.environ.get(ENV_VAR) or DEFAULT_URL)
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"results store URL must be a non-empty string such as {EXAMPLES}, got {raw!r}")
    raw = raw.strip()
    try:
        parsed = make_url(raw)
    except (ArgumentError, ValueError) as exc:
        raise ValueError(
            f"results store URL {mask_password(raw)!r} is malformed ({exc}); expected {EXAMPLES}"
        ) from None
    dialect, _, driver = parsed.drivername.partition("+")
    dialect = "postgresql" if dialect == "postgres" else dialect
    backend_cls = BACKENDS.get(dialect)
    if backend_cls is None or parsed.drivername not in backend_cls.drivers:
        accepted = ", ".join(d + "://" for cls in BACKENDS.values() for d in cls.drivers)
        what = f"dialect {dialect!r}" if backend_cls is None else f"driver {driver!r}"
        raise ValueError(
            f"results store URL {mask_password(raw)!r}: unsupported {what}; accepted: {accepted} "
            f"(e.g. {EXAMPLES})"
        )
    backend = backend_cls()
    return backend.normalise(parsed), backend
