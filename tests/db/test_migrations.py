"""One Alembic history for both backends: up, down to base, up again; models match it."""

from typing import Any

import pytest
import shapely
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from mobilize.db import make_engine
from mobilize.db.migrate import current_revision, downgrade, head_revision, migrations_dir, upgrade
from mobilize.models import Base


def _env_filter(dialect: str) -> Any:
    namespace: dict[str, Any] = {}
    source = (migrations_dir() / "env.py").read_text().split("if context.is_offline_mode")[0]
    exec(source, namespace)  # the real env.py filter, not a copy of it
    return namespace["_object_filter"](dialect)


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"district", "grid", "household", "responder", "event"} <= tables
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert not set(inspect(engine).get_table_names()) & set(Base.metadata.tables)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _env_filter(conn.dialect.name)}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_postgis_has_gist_indexes_and_refuses_invalid_geometry(postgis_url: str) -> None:
    engine = make_engine(postgis_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT extname FROM pg_extension WHERE extname='postgis'"))
        gist = conn.scalars(
            text("SELECT indexname FROM pg_indexes WHERE indexdef ILIKE '%USING gist%'")
        ).all()
        assert {"ix_grid_geom", "ix_household_geom", "ix_community_geom"} <= set(gist)
        # QGIS and GDAL read typed, SRID-tagged columns straight from geometry_columns.
        kinds: dict[str, str] = dict(
            conn.execute(
                text(
                    "SELECT f_table_name, type FROM geometry_columns"
                    " WHERE srid = 4326 AND f_geometry_column = 'geom'"
                )
            ).all()
        )
        assert kinds["grid"] == "MULTIPOLYGON" and kinds["household"] == "POINT"
    bowtie = shapely.MultiPolygon([shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])])
    with pytest.raises(IntegrityError, match="ck_district_geom_valid"), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO district (code, name, source_crs, geom, imported_at) "
                "VALUES ('X', 'x', 'wgs84', ST_GeomFromText(:wkt, 4326), now())"
            ),
            {"wkt": bowtie.wkt},
        )
    engine.dispose()
