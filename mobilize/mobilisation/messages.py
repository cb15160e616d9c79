"""The texts people receive about their assignment, and queueing them in the outbox."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mobilize.clock import Clock
from mobilize.mobilisation import engine
from mobilize.models import (
    Community,
    Grid,
    Mobilisation,
    Responder,
)
from mobilize.notify import Message
from mobilize.outbox import enqueue

KIND_NAMES = {
    "epidemic": "疫情",
    "flood": "防汛",
    "earthquake": "地震",
    "fire": "火灾",
    "other": "应急",
}


MODE_NAMES = {"walk": "步行", "cycle": "骑行", "drive": "驾车"}


@lru_cache(maxsize=64)
def clock_time(moment: datetime, display_tz: str) -> str:
    """`moment` as a clock reads it where the people are (HH:MM): made once per deadline, not
    once for each of an activation's twenty thousand messages."""
    return moment.astimezone(ZoneInfo(display_tz)).strftime("%H:%M")


def where(community: str, grid: str) -> str:
    """A grid's place for a person to read: its community then its name, the community said
    once (grids are usually named after it: 马家社区第10网格)."""
    return grid if grid.startswith(community) else f"{community}{grid}"


def assignment_message(
    mobilisation: Mobilisation,
    responder: Any,
    grid: Any,
    community: Any,
    placement: engine.Placement,
    display_tz: str,
) -> Message:
    """The assignment message (rows or objects with name, phone, code)."""
    deadline = clock_time(mobilisation.deadline, display_tz)
    kind = KIND_NAMES.get(mobilisation.kind, "应急")
    minutes = round(placement.minutes)
    text = (
        f"【mobilize】{responder.name}：{kind}动员“{mobilisation.title}”已启动，请于{deadline}前"
        f"到达{where(community.name, grid.name)}（{grid.code}），"
        f"{MODE_NAMES.get(placement.mode, '')}"
        f"约{minutes}分钟，请确认。 You are assigned to {grid.code} ({community.code}); "
        f"be there by {deadline}, about {minutes} min by {placement.mode}. Please acknowledge."
    )
    return Message(to=responder.phone, kind="assignment", text=text)


def tell_sent(
    session: Session,
    mobilisation: Mobilisation,
    responder: Responder,
    grid: Grid,
    trip: tuple[float, float, str],
    clock: Clock,
    display_tz: str,
) -> list[str]:
    """Queue the message telling a person a commander sent them to `grid` (minutes,
    metres, mode)."""
    community = session.get(Community, grid.community_id)
    assert community is not None
    placement = engine.Placement(responder.id, grid.id, "work", *trip)
    return enqueue(
        session,
        clock=clock,
        mobilisation_id=mobilisation.id,
        messages=[
            assignment_message(mobilisation, responder, grid, community, placement, display_tz)
        ],
    )
