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


class Prepared:
    """A statement built once (at import), run by `rows` and `run` on the driver's cursor."""

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
        key: bind.effective_value
        for key, bind in ((compiled.bind_names[b], b) for b in compiled.bind_names)
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
        row = type("Row", (fields,), {"__slots__": (), "_mapping": mapping})._make
        results = tuple(c.type._cached_result_processor(dialect, None) for c in columns)
    return _Compiled(
        sql=compiled.string,
        names=names,
        positional=compiled.positional,
        defaults=defaults,
        binds=binds,
        row=row,
        results=results,
    )


def _parameters(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    values = {**compiled.defaults, **params}
    for name, process in compiled.binds.items():
        values[name] = process(values[name])
    if compiled.positional:
        return tuple(values[name] for name in compiled.names)
    return {name: values[name] for name in compiled.names}


def _execute(
    session: Session, prepared: Prepared, params: Any, *, many: bool = False
) -> tuple[_Compiled, Any]:
    session.flush()  # what the session holds goes first, as its own execute would
    connection: Connection = session.connection()
    dialect = connection.dialect
    compiled = prepared.compiled_for(dialect)
    if many:
        parameters: Any = [_parameters(compiled, p) for p in params]
    else:
        parameters = _parameters(compiled, params)
    dbapi = connection.connection.driver_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    connection.dispatch.before_cursor_execute(
        connection, cursor, compiled.sql, parameters, None, many
    )
    try:
        if many:
            cursor.executemany(compiled.sql, parameters)
        else:
            cursor.execute(compiled.sql, parameters)
    except dialect.loaded_dbapi.Error as error:
        cursor.close()
        raise exc.DBAPIError.instance(
            compiled.sql, parameters, error, dialect.loaded_dbapi.Error
        ) from error
    return compiled, cursor


def rows(session: Session, prepared: Prepared, params: Mapping[str, Any]) -> list[Any]:
    """The rows (named tuples: by attribute or position) of a prepared SELECT or RETURNING."""
    compiled, cursor = _execute(session, prepared, params)
    try:
        fetched = cursor.fetchall()
    finally:
        cursor.close()
    assert compiled.row is not None, "this statement returns no rows"
    make, processors = compiled.row, compiled.results
    if not any(processors):
        return [make(r) for r in fetched]
    return [
        make([v if p is None or v is None else p(v) for p, v in zip(processors, r, strict=True)])
        for r in fetched
    ]


def run(session: Session, prepared: Prepared, params: Mapping[str, Any]) -> int:
    """Run a prepared INSERT, UPDATE or DELETE: how many rows it changed."""
    _, cursor = _execute(session, prepared, params)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def run_many(session: Session, prepared: Prepared, many: Sequence[Mapping[str, Any]]) -> None:
    """Run a prepared INSERT, UPDATE or DELETE once for each set of parameters."""
    if many:
        _execute(session, prepared, many, many=True)[1].close()
