"""The database tables (SQLAlchemy 2 declarative) and the column types they share.

Five tables: ``jobs``, ``trainings`` (shared by all jobs, keyed by the training key the search layer
computes), ``job_trainings`` (which job uses which training, and whether it was reused), ``checkpoints`` (the
kept weights of a training: where Tune stored them, their size and sha256; schema version 3) and
``schema_version`` (one row: the schema version number, see :mod:`search.store.migrations`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JOB_ID_LENGTH = 64
TRAINING_KEY_LENGTH = 128


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored as naive UTC text
    (fixed width, so text order is time order) and read back with ``tzinfo=UTC``. Naive datetimes are refused
    on the way in: the store never guesses a time zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value!r} has no time zone; pass datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_column() -> Any:
    """SQLAlchemy's JSON (JSONB on PostgreSQL); Python ``None`` is stored as SQL NULL, not JSON ``null``."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class JobRow(Base):
    """A job: spec, state, timestamps, progress counts, plan and result."""

    __tablename__ = "jobs"

    # `seq` gives a total insertion order (ties in created_at are possible within a microsecond).
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(JOB_ID_LENGTH), unique=True, nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(json_column(), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[dict[str, Any]] = mapped_column(json_column(), nullable=False)
    plan: Mapped[dict[str, Any] | None] = mapped_column(json_column())
    result: Mapped[dict[str, Any] | None] = mapped_column(json_column())
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    __table_args__ = (
        Index("ix_jobs_created", "created_at", "seq"),
        Index("ix_jobs_state_created", "state", "created_at", "seq"),
    )


class TrainingRow(Base):
    """A training, shared by every job that needs the same key."""

    __tablename__ = "trainings"

    key: Mapped[str] = mapped_column(String(TRAINING_KEY_LENGTH), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(json_column(), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(json_column())
    error: Mapped[str | None] = mapped_column(Text)
    device: Mapped[str | None] = mapped_column(String(64))
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class JobTrainingRow(Base):
    """Which job uses which training, in the order the job linked them, and whether it was reused."""

    __tablename__ = "job_trainings"

    job_id: Mapped[str] = mapped_column(
        String(JOB_ID_LENGTH), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    training_key: Mapped[str] = mapped_column(
        String(TRAINING_KEY_LENGTH), ForeignKey("trainings.key"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    reused: Mapped[bool] = mapped_column(Boolean, nullable=False)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class CheckpointRow(Base):
    """The kept weights of one training (at most one per training key): where Tune stored the checkpoint
    folder (a local path or a URI such as ``s3://...``), the size in bytes and sha256 of its weights file."""

    __tablename__ = "checkpoints"

    training_key: Mapped[str] = mapped_column(
        String(TRAINING_KEY_LENGTH), ForeignKey("trainings.key"), primary_key=True
    )
    uri: Mapped[str] = mapped_column(Text, nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class LeaseRow(Base):
    """Who trains a training right now (at most one holder per training key), until when: a claim renewed
    while the holder trains, taken over by another once it expired (its holder died)."""

    __tablename__ = "leases"

    training_key: Mapped[str] = mapped_column(
        String(TRAINING_KEY_LENGTH), ForeignKey("trainings.key"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class SchemaVersionRow(Base):
    """One row (id 1): the schema version the database is at."""

    __tablename__ = "schema_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
