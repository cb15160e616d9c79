"""Writing many rows at once: COPY on PostgreSQL, one executemany on SQLite.

Rows are dicts of Python values as the ORM would take them (datetimes aware, JSON as dicts,
geometry as shapely); each backend gets them in its own form."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import shapely
from sqlalchemy import JSON, Boolean, Float, Integer, Numeric, Table, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from mobilize.db import prepared
from mobilize.db.engine import is_postgres
from mobilize.db.prepared import Prepared
from mobilize.db.types import SRID, Geometry, UTCDateTime


def to_json(value: Any) -> str:
    """A JSON column's text as the bulk paths write it (Chinese kept readable)."""
    return json.dumps(value, ensure_ascii=False)


_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def copy_text(value: str) -> str:
    """A text field as COPY's text format spells it: backslash, tab and line ends escaped
    (most fields have none: one search, in C, and the field as it is)."""
    if _SPECIAL.search(value) is None:
        return value
    return _SPECIAL.sub(lambda m: _ESCAPES[m.group()], value)


def _aware(value: datetime) -> datetime:
    """As `UTCDateTime` refuses them: a naive time is a bug, not local time."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given; use an aware datetime from the clock")
    return value


def _copy_converter(column_type: Any) -> Callable[[Any], str]:
    """A value as COPY's text format spells it for a column of this type (chosen once per
    column; None is written as \\N by the caller)."""
    if isinstance(column_type, JSON):
        return lambda value: copy_text(to_json(value))
    if isinstance(column_type, Geometry):
        return lambda value: shapely.to_wkb(
            shapely.set_srid(value, SRID), hex=True, include_srid=True
        )
    if isinstance(column_type, UTCDateTime):
        return lambda value: _aware(value).isoformat()
    if isinstance(column_type, Boolean):
        return lambda value: "t" if value else "f"
    if isinstance(column_type, Integer | Float | Numeric):
        return str  # digits, a sign, a point: never anything to escape
    return lambda value: copy_text(str(value))


def _sqlite_converter(column_type: Any) -> Callable[[Any], Any] | None:
    """What SQLAlchemy itself would store on SQLite for a column of this type (so the ORM
    reads it back the same), chosen once per column: None when the value goes as it is."""
    if isinstance(column_type, JSON):
        return to_json
    if isinstance(column_type, Geometry):
        return shapely.to_wkb
    if isinstance(column_type, UTCDateTime):
        return lambda value: _aware(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(column_type, Boolean):
        return int
    return None


@lru_cache(maxsize=256)
def _defaults(table: Table, given: frozenset[str]) -> dict[str, Any]:
    """The column defaults the ORM would apply to a row that leaves these columns out:
    a value, or a callable to call for each row. Worked out once per table and set of
    columns: every commit of a wartime write inserts its events here."""
    found: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.name in given or default is None:
            continue
        if isinstance(default, ScalarElementColumnDefault | CallableColumnDefault):
            found[column.name] = default.arg
        else:
            raise ValueError(f"{table.name}.{column.name}: a default bulk inserts cannot apply")
    return found


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (column -> Python value, as the ORM takes them: left-out columns get
    their defaults) into `table` in the session's transaction, as fast as the backend can."""
    if not rows:
        return
    first = rows[0].keys()
    if not all(row.keys() == first for row in rows):
        by_shape: dict[frozenset[str], list[dict[str, Any]]] = {}
        for row in rows:
            by_shape.setdefault(frozenset(row), []).append(row)
        for same in by_shape.values():
            insert_rows(session, table, same)
        return
    defaults = _defaults(table, frozenset(first))
    if defaults:
        rows = [
            {
                **{k: d(None) if callable(d) else d for k, d in defaults.items()},
                **row,
            }
            for row in rows
        ]
    _insert_same_shape(session, table, rows)


ROWS_PER_WRITE = 1000
"""COPY goes to the server a thousand rows at a time: it checks and indexes one part while
Python formats the next (written whole, each waited for the other: xindu's activation events
took 0.27 s, in parts 0.17 s)."""


def _insert_same_shape(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    columns = list(rows[0])
    types = [table.c[name].type for name in columns]
    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    names = ", ".join(f'"{c}"' for c in columns)
    if is_postgres(session.get_bind()):
        converters = [_copy_converter(t) for t in types]
        copying = f'COPY "{table.name}" ({names}) FROM STDIN'
        with dbapi.cursor() as cursor, cursor.copy(copying) as copy:
            for start in range(0, len(rows), ROWS_PER_WRITE):
                part = rows[start : start + ROWS_PER_WRITE]
                # COPY's text format written a part at a time: row by row, the driver's
                # formatting took most of an activation's writes. \N is COPY's NULL.
                stored = _stored(columns, types, converters, part, "\\N")
                copy.write("".join("\t".join(line) + "\n" for line in zip(*stored, strict=True)))
        return
    stored = _stored(columns, types, [_sqlite_converter(t) for t in types], rows, None)
    marks = ", ".join("?" for _ in columns)
    cursor = dbapi.cursor()
    try:
        cursor.executemany(
            f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', zip(*stored, strict=True)
        )
    finally:
        cursor.close()


def _stored(
    columns: list[str],
    types: list[Any],
    converters: Sequence[Callable[[Any], Any] | None],
    rows: Sequence[dict[str, Any]],
    null: str | None,
) -> list[list[Any]]:
    """The rows' values as the backend stores them, column by column: one converter each, and
    a time (most rows of a write share one) formatted once."""
    stored = []
    for c, t, convert in zip(columns, types, converters, strict=True):
        values = [row[c] for row in rows]
        if convert is not None:
            if isinstance(t, UTCDateTime):
                seen: dict[Any, Any] = {}
                values = [
                    null if v is None else seen.get(v) or seen.setdefault(v, convert(v))
                    for v in values
                ]
            else:
                values = [null if v is None else convert(v) for v in values]
        stored.append(values)
    return stored


def insert_if_absent(session: Session, table: Table, values: dict[str, Any]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING its key: the new row's first primary-key
    column, or None when a row with the same unique key exists (or a concurrent one just
    committed). One round trip."""
    key = next(iter(table.primary_key.columns))
    stmt = (
        _upsert(is_postgres(session.get_bind()), table)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(key)
    )
    return session.execute(stmt).scalar()


def insert_many_if_absent(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], returning: Sequence[str]
) -> list[tuple[Any, ...]]:
    """Many rows (of one shape), skipping those whose unique key exists; `returning` columns
    of those inserted, in order."""
    if not rows:
        return []
    stmt = _insert_if_absent(
        is_postgres(session.get_bind()), table, tuple(rows[0]), tuple(returning)
    )
    return [tuple(r) for r in prepared.rows_each(session, stmt, rows)]


@lru_cache(maxsize=64)
def _insert_if_absent(
    postgres: bool, table: Table, columns: tuple[str, ...], returning: tuple[str, ...]
) -> Prepared:
    """Built once per table and shape (every phone's sync inserts its records with it)."""
    return Prepared(
        _upsert(postgres, table)
        .values({c: bindparam(c, type_=table.c[c].type) for c in columns})
        .on_conflict_do_nothing()
        .returning(*(table.c[c] for c in returning))
    )


def _upsert(postgres: bool, table: Table) -> Any:
    """The backend's INSERT, which knows ON CONFLICT (both dialects spell it the same)."""
    return postgresql.insert(table) if postgres else sqlite.insert(table)


def refresh_statistics(session: Session, tables: Sequence[str]) -> None:
    """Tell the query planner how these tables look after a bulk write (an activation's tens of
    thousands of assignments). Without fresh statistics SQLite answers "who holds this grid"
    by walking the whole mobilisation's assignments in responder order (4 ms instead of
    0.01 ms on xindu, on every phone request); PostgreSQL's autovacuum gets there, later."""
    for table in tables:
        session.execute(text(f'ANALYZE "{table}"'))


@contextmanager
def loading_empty_table(session: Session, table: str) -> Iterator[None]:
    """A bulk load into `table`: on PostgreSQL, when the table is empty (a database's first
    district), its foreign keys and non-unique indexes are dropped for the load and made
    again after it, checked and built once over every row instead of row by row (xindu's
    households: 9.6 s of COPY with them live, 2.6 s so). In the caller's transaction: if the
    load fails, the rollback brings them back untouched. An empty table is locked for the
    load (nobody reads a table with no rows); one that holds rows is loaded as it is, with
    neither readers nor other writers held up."""
    held = text(f'SELECT EXISTS (SELECT 1 FROM "{table}")')
    if not is_postgres(session.get_bind()) or session.execute(held).scalar():
        yield
        return
    session.execute(text(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE'))
    if session.execute(held).scalar():  # another writer's rows committed meanwhile
        yield
        return
    keys = session.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f' ORDER BY conname"
        ),
        {"t": table},
    ).all()
    indexes = session.execute(
        text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisunique ORDER BY c.relname"
        ),
        {"t": table},
    ).all()
    for name, _ in keys:
        session.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        session.execute(text(f'DROP INDEX "{name}"'))
    yield
    for _, definition in indexes:
        session.execute(text(definition))
    for name, definition in keys:
        session.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'))
