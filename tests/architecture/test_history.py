"""Nothing is ever lost: no code path deletes a row of the district or of its history.

History (assignments, records, hours, events, grid states) points at the district's rows by
foreign key, and those keys still cascade on delete; the promise holds because no code deletes
those rows: updates retire them (`retired_at`). This test reads every delete the application
can issue and fails on one aimed at a protected table."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Rows that may be replaced outright: a task's explicit assignees (each change is an event).
REPLACEABLE = {"TaskAssignee"}


def deletes(source: str) -> list[tuple[int, str]]:
    """(line, target) of every `delete(Model)`, `table_of(Model).delete()` and
    `session.delete(...)` in a module's text."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "delete" and node.args:
            target = node.args[0]
            found.append((node.lineno, target.id if isinstance(target, ast.Name) else "?"))
        elif isinstance(func, ast.Attribute) and func.attr == "delete":
            owner = func.value
            if (
                isinstance(owner, ast.Call)
                and isinstance(owner.func, ast.Name)
                and owner.func.id == "table_of"
                and owner.args
                and isinstance(owner.args[0], ast.Name)
            ):
                found.append((node.lineno, owner.args[0].id))
            elif isinstance(owner, ast.Name) and owner.id == "session":
                found.append((node.lineno, "session.delete"))
    return sorted(found)


def test_the_finder_sees_each_way_to_delete() -> None:
    source = (
        "session.execute(delete(Grid).where(x))\n"
        "session.execute(table_of(Household).delete())\n"
        "session.delete(row)\n"
    )
    assert deletes(source) == [(1, "Grid"), (2, "Household"), (3, "session.delete")]


def test_no_code_deletes_a_row_of_the_district_or_its_history() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} deletes {target}"
        for path in sorted((ROOT / "mobilize").rglob("*.py"))
        for line, target in deletes(path.read_text(encoding="utf-8"))
        if target not in REPLACEABLE
    ]
    assert offending == []
