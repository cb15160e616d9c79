"""Sessions and the one transaction an edge (mutation, task, command) owns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import CursorResult, Engine, Result, Row
from sqlalchemy.orm import Session, sessionmaker

from mobilize.db.engine import WRITE_OPTION

# A result row of any width (SQLAlchemy 2.1 types rows by their columns, which Core
# statements built at run time do not declare).
AnyRow = Row[*tuple[Any, ...]]


def make_sessionmaker(engine: Engine, *, write: bool = True) -> sessionmaker[Session]:
    """Sessions for edges that write (the default) or only read.

    On SQLite a writing session takes the write lock when it begins, so concurrent writers
    queue instead of failing; readers never wait (WAL)."""
    bind = engine.execution_options(**{WRITE_OPTION: True}) if write else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Commit once when the block ends, roll back everything when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def core_rows(session: Session, statement: Any, params: Any = None) -> Sequence[AnyRow]:
    """A Core statement's rows, on the session's connection after flushing what the session
    holds (as its own `execute` would): for the hot paths, where the ORM's handling of a
    plain result cost more than the query."""
    session.flush()
    return session.connection().execute(statement, params).all()


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (SQLAlchemy types `execute`'s result as a
    plain Result; for these statements it is a cursor's)."""
    assert isinstance(result, CursorResult)
    return result.rowcount
