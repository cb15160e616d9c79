"""The SQL a request runs, as the server sent it: for tests that count or compare statements."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, event


@contextlib.contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The statements run on `engine` inside the block, in order (text, parameters aside)."""
    said: list[str] = []

    def heard(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        said.append(statement)

    event.listen(engine, "before_cursor_execute", heard)
    try:
        yield said
    finally:
        event.remove(engine, "before_cursor_execute", heard)
