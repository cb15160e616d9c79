"""The house's import rules, read from the source (function-local imports included, since a
circle hidden inside a function is still a circle) and checked at run time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mobilize"
EDGES = ("mobilize.api", "mobilize.cli", "mobilize.worker")
DOMAINS = (
    "mobilize.auth",
    "mobilize.bundle",
    "mobilize.coverage",
    "mobilize.districts",
    "mobilize.generate",
    "mobilize.mobilisation",
    "mobilize.review",
    "mobilize.tasks",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The mobilize modules `name` imports anywhere in its text."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            # `from mobilize.x import y` imports the module mobilize.x.y when there is one
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in known else source)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imported(name, path, known) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative order)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [m for m in edges if m == start or m.startswith(start + ".")]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(edges[m])
    return seen


def test_the_cycle_finder_sees_a_circle_hidden_in_a_function() -> None:
    # The finder itself, on a made-up house: a -> b at the top, b -> a inside a function.
    edges = {"m.a": {"m.b"}, "m.b": {"m.a"}, "m.c": {"m.a"}}
    assert cycles(edges) == [["m.a", "m.b"]]
    assert cycles({"m.a": {"m.b"}, "m.b": set()}) == []


def test_no_module_of_mobilize_imports_itself_round_a_circle() -> None:
    assert cycles(graph()) == []


def test_no_domain_reaches_the_api_the_cli_or_the_worker() -> None:
    edges = graph()
    leaks = {
        domain: sorted(m for m in reachable(edges, domain) if m.startswith(EDGES))
        for domain in DOMAINS
    }
    assert {d: m for d, m in leaks.items() if m} == {}


def test_importing_every_domain_module_loads_no_edge() -> None:
    names = sorted(n for n in modules() if n.startswith(DOMAINS))
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({EDGES!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
