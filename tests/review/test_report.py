"""The after-action report: its figures recomputed here, independently, from the raw events
it exports, and the files reviewers open."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.bundle import Bundle
from mobilize.cli.main import app as cli
from mobilize.clock import ManualClock
from mobilize.coverage import milestones
from mobilize.mobilisation import switch
from mobilize.models import Grid, MobilisationArea, Pairing, Responder, Role, Street
from mobilize.notify import LogNotifier
from mobilize.settings import Settings
from mobilize.worker.inprocess import InProcessDispatcher
from tests.people import make_user
from tests.simulate import simulate
from tests.wartime import activated, district_commander, write

REPORT = """query($m: ID!, $street: ID) {
  afterActionReport(mobilisation: $m, street: $street) {
    grids mobilisedByDeadline mobilised peopleCalled events targetMinutes
    timeToAcknowledge { count p50 p90 max buckets { minutes count } }
    timeToMobilise { count p50 p90 max }
    curve { minute mobilised pct }
    streets { code grids missed mobilisedByDeadline }
    missed { code cause causeLabel mobilisedMinute }
    units { code quota called arrivedByDeadline quotaMet }
    kinds { kind called arrived }
    timeline { seq kind label minute actor }
  }
}"""


def nearest_rank(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1]


def recompute(events: list[dict[str, Any]], t0: datetime, deadline: datetime) -> dict[str, Any]:
    """The report's figures from the raw log alone, written here without the report's code."""
    at = {e["seq"]: datetime.fromisoformat(e["at"]) for e in events}
    first_mobilised: dict[int, datetime] = {}
    grids: set[int] = set()
    for e in events:
        if e["kind"] == "grid.status":
            g = e["payload"]["grid"]
            grids.add(g)
            if e["payload"]["status"] in ("mobilised", "checked") and g not in first_mobilised:
                first_mobilised[g] = at[e["seq"]]
    limit = (deadline - t0).total_seconds() / 60
    minute = {g: (t - t0).total_seconds() / 60 for g, t in first_mobilised.items()}
    on_time = {g for g, m in minute.items() if m <= limit}
    # Per person: first sent, first acknowledged, checked in; and per grid, who did what there.
    sent_at: dict[int, datetime] = {}
    acked_at: dict[int, datetime] = {}
    arrived_at: dict[int, datetime] = {}
    where: dict[int, int] = {}
    history: dict[int, list[tuple[str, int, datetime]]] = defaultdict(list)
    for e in events:
        p = e["payload"]
        if e["subject_type"] != "responder" or "status" not in p:
            continue
        rid, t = int(e["subject_id"]), at[e["seq"]]
        where[rid] = p.get("grid", where.get(rid))
        history[where[rid]].append((e["kind"], rid, t))
        if p["status"] == "assigned":
            sent_at.setdefault(rid, t)
        if e["kind"] == "assignment.acknowledged":
            acked_at.setdefault(rid, t)
        if e["kind"] == "assignment.checked_in":
            arrived_at.setdefault(rid, t)
    causes = {}
    for g in grids - on_time:
        before = [(k, r, t) for k, r, t in history.get(g, []) if t <= deadline]
        if not [k for k, _, _ in before if k != "assignment.released"]:
            causes[g] = "nobody_in_reach"
        elif any(k == "assignment.checked_in" and t > deadline for k, _, t in history[g]):
            causes[g] = "late_arrival"
        elif any(k == "assignment.acknowledged" for k, _, _ in before):
            causes[g] = "no_show"
        elif any(k == "assignment.declined" for k, _, _ in history[g]):
            causes[g] = "declined"
        else:
            causes[g] = "late_acknowledgement"
    ack = [(acked_at[r] - sent_at[r]).total_seconds() / 60 for r in acked_at if r in sent_at]
    return {
        "grids": len(grids),
        "on_time": on_time,
        "mobilised": len(first_mobilised),
        "minutes": minute,
        "ack": ack,
        "causes": causes,
        "arrived_by_deadline": {r for r, t in arrived_at.items() if t <= deadline},
        "called": set(sent_at),
        "commands": [
            e["seq"]
            for e in events
            if e["kind"].startswith("mobilisation.")
            or e["kind"] in ("assignment.reassigned", "assignment.pinned", "tasks.dispatched")
        ],
    }


@pytest.fixture
def morning(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> tuple[int, datetime, datetime]:
    """A mobilisation played through its deadline, then stood down."""
    mobilisation = activated(engine, tiny_bundle, clock)
    simulate(
        engine,
        clock,
        random.Random(31),
        steps=130,
        max_gap_minutes=3,
        actions=("ack", "ack", "check_in", "decline", "reassign", "record"),
    )
    clock.advance(timedelta(minutes=200))
    write(engine, milestones.run_due, clock=clock)
    write(
        engine,
        switch.stand_down,
        actor=district_commander(engine),
        clock=clock,
        mobilisation_id=mobilisation.id,
    )
    return mobilisation.id, mobilisation.t0, mobilisation.deadline


def test_the_report_files_agree_with_the_raw_events(
    engine: Engine,
    migrated_url: str,
    tmp_path: Path,
    morning: tuple[int, datetime, datetime],
) -> None:
    mobilisation_id, t0, deadline = morning
    result = CliRunner().invoke(
        cli,
        ["report", str(mobilisation_id), "--out", str(tmp_path), "--database-url", migrated_url],
    )
    assert result.exit_code == 0, result.output
    for name in ("report.md", "report.xlsx", "coverage.png", "map.png", "events.jsonl"):
        assert (tmp_path / name).stat().st_size > 0, name
    for picture in ("coverage.png", "map.png"):
        assert (tmp_path / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    expected = recompute(events, t0, deadline)
    with Session(engine) as session:
        codes = dict(session.execute(select(Grid.id, Grid.code)).all())
    from openpyxl import load_workbook

    book = load_workbook(tmp_path / "report.xlsx", read_only=True)
    assert book.sheetnames[0] == "概要 Summary" and "未按时 Missed" in book.sheetnames
    summary = {row[0]: row[1] for row in book["概要 Summary"].iter_rows(values_only=True)}
    assert summary["微网格 Micro-grids"] == expected["grids"] == 20
    assert summary["时限内到岗 Mobilised by the deadline"] == len(expected["on_time"])
    assert summary["事件数 Events"] == len(events)
    missed = list(book["未按时 Missed"].iter_rows(values_only=True))[1:]
    assert {row[0] for row in missed} == {codes[g] for g in expected["causes"]}
    labels = {row[0]: row[4] for row in missed}
    from mobilize.review.report import CAUSES

    assert labels == {codes[g]: CAUSES[c] for g, c in expected["causes"].items()}
    assert 0 < len(missed) < 20, "the morning should have both kinds of grids"
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert markdown.startswith("# 战后复盘报告 After-action report")
    assert "## 未按时到岗的微网格 Grids that missed the deadline" in markdown


def test_the_api_report_agrees_with_the_raw_events(
    engine: Engine,
    clock: ManualClock,
    tiny_bundle: Bundle,
    morning: tuple[int, datetime, datetime],
) -> None:
    mobilisation_id, t0, deadline = morning
    with Session(engine) as session:
        from mobilize.review.export import event_lines

        events = [json.loads(line) for line in event_lines(session, mobilisation_id)]
        codes = dict(session.execute(select(Grid.id, Grid.code)).all())
        unit_of: dict[int, int] = {
            r: u
            for r, u in session.execute(select(Responder.id, Responder.unit_id))
            if u is not None
        }
        active = set(
            session.scalars(
                select(MobilisationArea.community_id).where(
                    MobilisationArea.mobilisation_id == mobilisation_id
                )
            )
        )
        quotas: dict[int, int] = defaultdict(int)
        for unit, community, quota in session.execute(
            select(Pairing.unit_id, Pairing.community_id, Pairing.wartime_quota)
        ):
            if community in active:
                quotas[unit] += quota
        street = session.scalars(select(Street)).first()
    expected = recompute(events, t0, deadline)
    dispatcher = InProcessDispatcher(engine, LogNotifier(), clock)
    token = make_user(engine, clock, Role.REVIEWER, tiny_bundle.district_code)
    api = create_app(Settings(), engine=engine, clock=clock, dispatcher=dispatcher)
    with TestClient(api) as client:
        body = client.post(
            "/graphql",
            json={
                "query": REPORT,
                "variables": {"m": to_global_id("Mobilisation", mobilisation_id)},
            },
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    assert "errors" not in body, body
    rep = body["data"]["afterActionReport"]
    assert rep["grids"] == expected["grids"] and rep["events"] == len(events)
    assert rep["mobilisedByDeadline"] == len(expected["on_time"])
    assert rep["mobilised"] == expected["mobilised"]
    assert rep["targetMinutes"] == 180
    # Time to mobilise and to acknowledge: the same distributions.
    minutes = list(expected["minutes"].values())
    assert rep["timeToMobilise"]["count"] == len(minutes)
    assert rep["timeToMobilise"]["p50"] == round(nearest_rank(minutes, 50), 1)
    assert rep["timeToMobilise"]["max"] == round(max(minutes), 1)
    assert rep["timeToAcknowledge"]["count"] == len(expected["ack"])
    assert rep["timeToAcknowledge"]["p90"] == round(nearest_rank(expected["ack"], 90), 1)
    assert sum(b["count"] for b in rep["timeToAcknowledge"]["buckets"]) == len(expected["ack"])
    # The curve climbs to every grid ever mobilised; the street rows add up.
    assert rep["curve"][-1]["mobilised"] == expected["mobilised"]
    assert [p["minute"] for p in rep["curve"]] == sorted(p["minute"] for p in rep["curve"])
    assert sum(s["missed"] for s in rep["streets"]) == len(expected["causes"])
    assert street is not None and rep["streets"][0]["code"] == street.code
    # Missed grids, each with the cause the log shows.
    assert {m["code"]: m["cause"] for m in rep["missed"]} == {
        codes[g]: c for g, c in expected["causes"].items()
    }
    # Forces: quotas from the pairings, arrivals from the check-ins.
    arrived: dict[int, int] = defaultdict(int)
    called: dict[int, int] = defaultdict(int)
    for r in expected["arrived_by_deadline"]:
        if unit_of.get(r) is not None:
            arrived[unit_of[r]] += 1
    for r in expected["called"]:
        if unit_of.get(r) is not None:
            called[unit_of[r]] += 1
    assert rep["units"], "the tiny district's units are paired with its communities"
    with Session(engine) as session:
        from mobilize.models import Unit

        unit_ids = dict(session.execute(select(Unit.code, Unit.id)).all())
    for u in rep["units"]:
        pk = unit_ids[u["code"]]
        assert u["quota"] == quotas[pk]
        assert u["arrivedByDeadline"] == arrived[pk]
        assert u["called"] == called[pk]
        assert u["quotaMet"] == (arrived[pk] >= quotas[pk])
    assert sum(k["called"] for k in rep["kinds"]) == len(expected["called"])
    # The timeline of commands: activation, reassignments, escalation, deadline, stand-down.
    seqs = [c["seq"] for c in rep["timeline"]]
    assert set(expected["commands"]) <= set(seqs)
    kinds = [c["kind"] for c in rep["timeline"]]
    assert kinds[0] == "mobilisation.activated" and kinds[-1] == "mobilisation.stood_down"
    assert "mobilisation.deadline_passed" in kinds and "assignment.reassigned" in kinds
    assert rep["timeline"][0]["label"].startswith("启动战时状态")
