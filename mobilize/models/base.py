"""Declarative base with constraint names fixed, so one migration history fits both backends."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    ForeignKeyConstraint,
    Index,
    MetaData,
    Table,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mobilize.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Retirable:
    """A row of the district that an update may retire: kept, marked with when it left, so
    history that points at it (assignments, records, events, hours) keeps pointing at it. What
    the district is today is its rows with no `retired_at`."""

    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    @classmethod
    def current(cls) -> ColumnElement[bool]:
        """The rows of today's district (not retired)."""
        return cls.retired_at.is_(None)


class Origin(enum.StrEnum):
    """Who keeps a row: a bundle's import, or someone through the API. An import retires only
    what bundles keep, so a volunteer a secretary enrolled is not retired by the next weekly
    bundle that does not know them; a bundle that names them takes them over."""

    BUNDLE = "bundle"
    API = "api"


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, as a `Table` (SQLAlchemy types `__table__` as any FromClause):
    what Core statements and the bulk writers take."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def spatial_index(table: str, column: str = "geom") -> Index:
    """A GiST index on PostGIS; SQLite has none (geo/ indexes in memory with an STRtree)."""
    return Index(f"ix_{table}_{column}", column, postgresql_using="gist").ddl_if(
        dialect="postgresql"
    )


def valid_geometry(column: str = "geom") -> CheckConstraint:
    """PostGIS refuses invalid geometry; on SQLite the importer's checks stand alone."""
    return CheckConstraint(text(f"ST_IsValid({column})"), name=f"{column}_valid").ddl_if(
        dialect="postgresql"
    )


def checked_per_statement(column: str, referenced: str) -> ForeignKeyConstraint:
    """A reference of the tables an activation fills by the ten thousand: a foreign key on
    SQLite; on PostgreSQL checked once per statement over all its rows, not row by row
    (migration 0022: the row-by-row checks took most of an activation's writes)."""
    return ForeignKeyConstraint([column], [f"{referenced}.id"]).ddl_if(dialect="sqlite")
