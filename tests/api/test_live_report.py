"""A report asked for before the deadline is of a mobilisation in progress: the figures so
far, nothing counted as missed; after the deadline the missed grids are named."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.models import GridState
from tests.people import cast
from tests.wartime import activated

REPORT = """query($m: ID!) { afterActionReport(mobilisation: $m) {
  grids mobilised mobilisedByDeadline inProgress asOf missed { code }
  streets { code missed } } }"""


def test_five_minutes_in_the_report_is_in_progress_and_after_the_deadline_it_names_misses(
    engine: Engine, small_bundle: Bundle, clock: ManualClock
) -> None:
    m = activated(engine, small_bundle, clock)
    people = cast(engine, clock)
    with Session(engine) as session:
        grids = session.scalar(
            select(func.count()).select_from(GridState).where(GridState.mobilisation_id == m.id)
        )
    gid = to_global_id("Mobilisation", m.id)
    clock.advance(timedelta(minutes=5))
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        auth = {"Authorization": f"Bearer {people.reviewer}"}

        def report() -> dict[str, Any]:
            answer = client.post(
                "/graphql", json={"query": REPORT, "variables": {"m": gid}}, headers=auth
            ).json()
            assert "errors" not in answer, answer
            found: dict[str, Any] = answer["data"]["afterActionReport"]
            return found

        early = report()
        assert early["grids"] == grids and grids
        assert early["inProgress"] is True
        assert early["asOf"] == clock.now().isoformat()
        assert early["missed"] == []  # nobody has missed a deadline five minutes in
        assert {s["missed"] for s in early["streets"]} == {0}
        text = client.get(f"/reports/{gid}/report.md", headers=auth).text
        assert "进行中" in text and "In progress" in text
        assert "时限未到" in text
        # The pictures travel inside the downloaded file, and are PNGs.
        pictures = re.findall(r"!\[(\w+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
        assert [name for name, _ in pictures] == ["coverage", "map"]
        assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for _, data in pictures)

        clock.advance(timedelta(minutes=180))  # past the deadline, nobody arrived
        late = report()
        assert late["inProgress"] is False and late["asOf"] is None
        assert late["mobilised"] == 0
        assert len(late["missed"]) == grids
        assert sum(s["missed"] for s in late["streets"]) == grids
