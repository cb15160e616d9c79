"""Alembic environment: one history for SQLite and PostGIS.

Run through `mobilize db upgrade` (or mobilize.db.migrate), which hands a connection in
`config.attributes["connection"]`; plain `alembic` with -x url=... works too."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from mobilize.db.engine import make_engine
from mobilize.models import Base
from mobilize.settings import get_settings

# PostGIS's own tables and schemas, never ours to create or drop.
_POSTGIS_TABLES = {
    "spatial_ref_sys",
    "geometry_columns",
    "geography_columns",
    "raster_columns",
    "raster_overviews",
    "layer",
    "topology",
}
_POSTGIS_SCHEMAS = {"tiger", "tiger_data", "topology"}


def _object_filter(dialect_name: str) -> Any:
    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table" and (
            name in _POSTGIS_TABLES or getattr(obj, "schema", None) in _POSTGIS_SCHEMAS
        ):
            return False
        # Objects declared for one backend only (GiST indexes) do not exist on the other.
        only_for = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return not (only_for and only_for != dialect_name)

    return include_object


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=_object_filter(connection.dialect.name),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
run_migrations_online()
