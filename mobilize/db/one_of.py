"""`column IN (values)` as one bound parameter, however many values there are.

SQLAlchemy's IN list binds one parameter per value and rewrites the statement's text at
every execution; with a district's thousands of ids the driver then parses a statement as
long as the list (on PostgreSQL most of an activation's database time), and SQLite caps a
statement's parameters. Here the list is one value: an array on PostgreSQL
(`column = ANY(:p)`), a JSON array on SQLite (`column IN (SELECT value FROM
json_each(:p))`). Both keep the column's index; the statement is compiled once and cached.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, Text, TypeDecorator, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, roles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, coercions
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeEngine


class ValueList(TypeDecorator[list[Any]]):
    """A list bound as one parameter: an array of `item` on PostgreSQL, JSON text on SQLite."""

    impl = Text
    cache_ok = True

    def __init__(self, item: TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(self.item))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            raise ValueError("one_of needs a list of values, not None")
        values = list(value)
        if dialect.name == "postgresql":
            return values
        return json.dumps(values, ensure_ascii=False)


class OneOf(ColumnElement[bool]):
    """The condition `column IN values`, rendered per backend (see the module)."""

    __visit_name__ = "one_of"
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own declaration is a list)
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]
    type = Boolean()
    _is_implicitly_boolean = True  # a condition: no "= 1" after it on SQLite

    def __init__(self, column: Any, values: BindParameter[Any]) -> None:
        self.column = coercions.expect(roles.ExpressionElementRole, column)
        self.values = values


def one_of(column: Any, values: Iterable[Any] | str) -> OneOf:
    """`column IN values`; `values` is the list itself, or the name of a parameter given when
    the statement runs (for statements built once)."""
    item = coercions.expect(roles.ExpressionElementRole, column).type
    if isinstance(values, str):
        return OneOf(column, bindparam(values, type_=ValueList(item)))
    return OneOf(column, bindparam(None, list(values), type_=ValueList(item)))


@compiles(OneOf)
def _sqlite(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} IN (SELECT value FROM json_each({compiler.process(element.values, **kw)}))"


@compiles(OneOf, "postgresql")
def _postgresql(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} = ANY({compiler.process(element.values, **kw)})"
