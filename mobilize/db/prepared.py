"""Hot statements compiled once per backend and run on the driver's cursor.

A phone's sync or check-in runs a handful of small statements; through SQLAlchemy's Core each
execution costs ~40 µs of Python (cache key, parameter processing, execution context,
result metadata) around a query the driver answers in ~5 µs, and the drill makes hundreds of
thousands of them. A `Prepared` statement is built once at import, compiled once per dialect
(SQL text, parameter order, the types' bind and result processors) and then executed straight
on the session's own DBAPI connection, in the session's transaction. What stays the same:
the engine's `before_cursor_execute` listeners hear it, and driver errors arrive as
SQLAlchemy's `DBAPIError` subclasses, as from any other statement.

Only statements without expanding parameters (`IN` lists: use `one_of`) can be prepared.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order a positional driver takes them
    positional: bool
    defaults: dict[str, Any]  # the statement's own values (its literals), unprocessed
    binds: dict[str, Callable[[Any], Any]]
    row: Callable[..., tuple[Any, ...]] | None  # makes a row of a SELECT or RETURNING
    results: tuple[Processor, ...]
    many_options: dict[str, Any]  # psycopg: keep each statement's RETURNING rows


class Prepared:
    """A statement built once (at import), run on the driver's cursor by `rows`, `rows_each`,
    `run` or `run_many`."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def compiled_for(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            found = self._by_dialect[dialect.name] = _compile(self.statement, dialect)
        return found


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("a prepared statement cannot expand lists: use one_of")
    if compiled.positional:
        names = tuple(compiled.positiontup or ())
    else:
        names = tuple(dict.fromkeys(compiled.bind_names.values()))
    defaults = {
        name: bind.effective_value
        for bind, name in compiled.bind_names.items()
        if not bind.required
    }
    binds = {name: fn for name, fn in compiled._bind_processors.items() if fn is not None}
    columns = compiled._result_columns
    row = None
    results: tuple[Processor, ...] = ()
    if columns:
        fields = namedtuple("Fields", [c.keyname for c in columns], rename=True)  # type: ignore[misc]
        # Rows read as SQLAlchemy's do: by attribute, by position, and `_mapping`.
        mapping = property(lambda self: self._asdict())
        row_type: Any = type("Row", (fields,), {"__slots__": (), "_mapping": mapping})
        row = row_type._make
        results = tuple(c.type._cached_result_processor(dialect, None) for c in columns)
    return _Compiled(
        sql=compiled.string,
        names=names,
        positional=compiled.positional,
        defaults=defaults,
        binds=binds,
        row=row,
        results=results,
        many_options={"returning": True} if dialect.name == "postgresql" and columns else {},
    )


def _parameters(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    values = {**compiled.defaults, **params}
    for name, process in compiled.binds.items():
        values[name] = process(values[name])
    if compiled.positional:
        return tuple(values[name] for name in compiled.names)
    return {name: values[name] for name in compiled.names}


def _cursor(session: Session, prepared: Prepared) -> tuple[Connection, _Compiled, Any]:
    session.flush()  # what the session holds goes first, as its own execute would
    connection = session.connection()
    dbapi = connection.connection.driver_connection
    assert dbapi is not None
    return connection, prepared.compiled_for(connection.dialect), dbapi.cursor()


def _execute(
    connection: Connection, compiled: _Compiled, cursor: Any, parameters: Any, many: bool
) -> None:
    """Execute as SQLAlchemy would: its listeners hear it, its errors are raised."""
    connection.dispatch.before_cursor_execute(
        connection, cursor, compiled.sql, parameters, None, many
    )
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        if many:
            cursor.executemany(compiled.sql, parameters, **compiled.many_options)
        else:
            cursor.execute(compiled.sql, parameters)
    except dbapi_error as error:
        cursor.close()
        raise exc.DBAPIError.instance(compiled.sql, parameters, error, dbapi_error) from error


def _made(compiled: _Compiled, fetched: Sequence[Any]) -> list[Any]:
    assert compiled.row is not None, "this statement returns no rows"
    make, processors = compiled.row, compiled.results
    if not any(processors):
        return [make(r) for r in fetched]
    return [
        make([v if p is None or v is None else p(v) for p, v in zip(processors, r, strict=True)])
        for r in fetched
    ]


def rows(session: Session, prepared: Prepared, params: Mapping[str, Any]) -> list[Any]:
    """The rows (named tuples: by attribute or position) of a prepared SELECT or RETURNING."""
    connection, compiled, cursor = _cursor(session, prepared)
    _execute(connection, compiled, cursor, _parameters(compiled, params), False)
    try:
        return _made(compiled, cursor.fetchall())
    finally:
        cursor.close()


def rows_each(session: Session, prepared: Prepared, many: Sequence[Mapping[str, Any]]) -> list[Any]:
    """A prepared INSERT ... RETURNING run for each set of parameters: the rows it returned,
    in order (one statement a row on SQLite, whose driver returns nothing from a batch; one
    pipelined batch on PostgreSQL)."""
    if not many:
        return []
    connection, compiled, cursor = _cursor(session, prepared)
    found: list[Any] = []
    try:
        if connection.dialect.name == "sqlite":
            for params in many:
                _execute(connection, compiled, cursor, _parameters(compiled, params), False)
                found.extend(cursor.fetchall())
        else:
            parameters = [_parameters(compiled, p) for p in many]
            _execute(connection, compiled, cursor, parameters, True)
            while True:
                found.extend(cursor.fetchall())
                if not cursor.nextset():
                    break
        return _made(compiled, found)
    finally:
        cursor.close()


def run(session: Session, prepared: Prepared, params: Mapping[str, Any]) -> int:
    """Run a prepared INSERT, UPDATE or DELETE: how many rows it changed."""
    connection, compiled, cursor = _cursor(session, prepared)
    try:
        _execute(connection, compiled, cursor, _parameters(compiled, params), False)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def run_many(session: Session, prepared: Prepared, many: Sequence[Mapping[str, Any]]) -> None:
    """Run a prepared INSERT, UPDATE or DELETE once for each set of parameters."""
    if not many:
        return
    connection, compiled, cursor = _cursor(session, prepared)
    try:
        _execute(connection, compiled, cursor, [_parameters(compiled, p) for p in many], True)
    finally:
        cursor.close()
