"""A throwaway PostGIS database for a benchmark (the server at MOBILIZE_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get(
    "MOBILIZE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def scratch_postgis(prefix: str = "mobilize_bench", template: str | None = None) -> Iterator[str]:
    """A new database's URL, empty or a copy of the `template` database's URL (which must
    have no connections open); dropped (connections and all) afterwards."""
    admin = create_engine(
        make_url(ADMIN_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        # A copy by files, behind a checkpoint: copied through the WAL (the default), the
        # district's pages would still be written out while the benchmark runs.
        copy = f' TEMPLATE "{make_url(template).database}" STRATEGY FILE_COPY' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        if template:
            conn.execute(text("CHECKPOINT"))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
