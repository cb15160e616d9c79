"""Test databases: every test that takes `engine` runs on SQLite and on PostGIS.

The PostgreSQL server comes from MOBILIZE_TEST_POSTGRES_URL (default: trust auth on
127.0.0.1:5432, as `scripts/test` sets up). It is never skipped: a missing server fails the
run, unless MOBILIZE_TEST_BACKENDS=sqlite says so explicitly on a laptop."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_engine
from mobilize.db.migrate import upgrade
from mobilize.generate import PRESETS, generate_district
from mobilize.models import Base

ADMIN_URL = os.environ.get(
    "MOBILIZE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [
    b for b in os.environ.get("MOBILIZE_TEST_BACKENDS", "sqlite,postgresql").split(",") if b
]


def _admin() -> Engine:
    return create_engine(
        make_url(ADMIN_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )


def new_database_url(backend: str, tmp: Path) -> str:
    """A fresh, empty database of `backend`."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'test-{uuid.uuid4().hex[:8]}.db'}"
    name = f"mobilize_test_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database_url(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, dropped after the test."""
    url = new_database_url(backend, tmp_path)
    yield url
    drop_database_url(url)


@pytest.fixture(scope="session")
def migrated_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per backend for the whole run; tests clean up after themselves."""
    url = new_database_url(backend, tmp_path_factory.mktemp(backend))
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    drop_database_url(url)


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on the migrated database; every row is gone again after the test."""
    eng = make_engine(migrated_url)
    yield eng
    wipe(eng)
    eng.dispose()


def wipe(eng: Engine) -> None:
    """Every row gone (the schema stays)."""
    with eng.begin() as conn:
        if eng.dialect.name == "postgresql":  # TRUNCATE: the event log refuses DELETE
            # A server stopped mid-request (a page test's, its socket still open) can leave a
            # read transaction open on this database; TRUNCATE would wait on it for ever.
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                    "current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in%'"
                )
            )
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture(scope="session")
def postgis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated PostGIS database, for the storage rules only PostGIS has."""
    if "postgresql" not in BACKENDS:
        pytest.skip("MOBILIZE_TEST_BACKENDS excludes postgresql")
    url = new_database_url("postgresql", tmp_path_factory.mktemp("postgis"))
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    drop_database_url(url)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 7, 1, 8, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def tiny_bundle() -> Bundle:
    return generate_district(PRESETS["tiny"], seed=7)


@pytest.fixture(scope="session")
def small_bundle() -> Bundle:
    """Two streets, a few hundred grids: enough for paging and nesting across levels."""
    preset = PRESETS["tiny"].with_counts(
        streets=2,
        communities=5,
        micro_grids=240,
        micro_grids_per_general_grid=8,
        units=4,
        sunk_cadres=40,
        micro_grid_members=260,
    )
    return generate_district(preset, seed=11)
