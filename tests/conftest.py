"""Session-wide test set-up: Ray environment, paths to the shared data, a real local Ray once per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# Before anything imports ray: no auth token for local tests, no usage stats, no implicit ray.init().
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_INIT", "1")
# Every Ray node of the tests on 127.0.0.1 (test traffic stays on loopback): without it Ray turns 127.0.0.1
# into this machine's network address. Ray calls the switch a Windows/macOS one; on Linux it picks loopback.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "TASKGROUP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SHARED_DATA = Path(os.environ.get("TASKGROUP_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real data for tests); skips with the reason where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set TASKGROUP_SHARED_DATA to its folder)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A real local Ray (2 CPUs, no dashboard), started once for the whole session."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=100 * 1024**2,
        )
    yield
    ray.shutdown()


def _psycopg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_pg_database(name: str) -> Iterator[str]:
    """Database ``name`` created afresh on the test server (one left over by a crashed run is dropped
    first), its URL yielded, and dropped afterwards; skips, saying why, where no server answers or the user
    may not create databases."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = _psycopg_dsn(PG_ADMIN_URL)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL test database at {PG_ADMIN_URL}: {str(exc).strip()}")
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this session (URL without a schema), dropped at the end."""
    with fresh_pg_database(f"tg_test_{uuid.uuid4().hex[:10]}") as url:
        yield url


@pytest.fixture
def pg_schema_url(pg_database: str) -> Iterator[str]:
    """A store URL on a PostgreSQL schema of this test's own (dropped after it)."""
    import psycopg
    from sqlalchemy.engine import make_url

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_psycopg_dsn(pg_database), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield (
        make_url(pg_database)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(False)
    )
    with psycopg.connect(_psycopg_dsn(pg_database), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
