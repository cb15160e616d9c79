"""The pages call each task kind by the server's own name (one name per kind everywhere)."""

from __future__ import annotations

import re

from mobilize.tasks.dispatch import TITLES
from mobilize.web import STATIC


def test_every_task_kind_has_the_servers_name_on_every_page() -> None:
    app = (STATIC / "app.js").read_text(encoding="utf-8")
    block = app.split("export const TASK_KINDS = {", 1)[1].split("};", 1)[0]
    names = re.findall(r'(\w+): \["([^"]+)", "([^"]+)"\]', block)
    pages = {kind: f"{zh} {en}" for kind, zh, en in names}
    assert pages == {kind.name: title for kind, title in TITLES.items()}
    # No page keeps a list of its own.
    for script in STATIC.glob("*.js"):
        if script.name != "app.js":
            assert "TASK_KINDS = {" not in script.read_text(encoding="utf-8"), script.name
