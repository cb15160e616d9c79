"""A mobilisation as it stood at any instant, folded from its event log.

The log is the record: `grid.status` events carry each grid's state as the command centres
saw it, assignment events each person's grid and status, `grid.escalated` / `grid.missed`
and `mobilisation.stood_down` the milestones. Because event times rise with `mseq` (see
mobilize.events), "everything up to t" is a prefix of the sequence. Snapshots of the folded
state every `every` events let `state_at` start from the nearest one, so it folds at most
that many events however long the log."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobilize.coverage.service import (
    GRID_STATUS,
    Coverage,
    curve_of,
    figures_to_coverage,
)
from mobilize.db.bulk import insert_if_absent
from mobilize.events import read_log
from mobilize.models import Event, EventCounter, EventSnapshot, GridStatus, Mobilisation, table_of

_MOBILISED = (GridStatus.MOBILISED.value, GridStatus.CHECKED.value)


@dataclass(slots=True)
class GridAt:
    grid_id: int
    community_id: int
    street_id: int
    status: str
    assigned: int
    answered: int
    on_site: int
    households: int
    checked: int
    mobilised_at: datetime | None = None  # first reached its minimum on site
    escalated: bool = False
    missed: bool = False


@dataclass(slots=True)
class PersonAt:
    responder_id: int
    grid_id: int | None
    status: str


@dataclass
class State:
    """The fold: after event `mseq`, at `at`."""

    mobilisation_id: int
    mseq: int = 0
    at: datetime | None = None
    stood_down_at: datetime | None = None
    grids: dict[int, GridAt] = field(default_factory=dict)
    people: dict[int, PersonAt] = field(default_factory=dict)

    def apply(
        self,
        mseq: int,
        at: datetime,
        kind: str,
        subject_type: str,
        subject_id: str,
        payload: dict[str, Any],
    ) -> None:
        self.mseq, self.at = mseq, at
        if kind == GRID_STATUS:
            gid = payload["grid"]
            was = self.grids.get(gid)
            grid = GridAt(
                grid_id=gid,
                community_id=payload["community"],
                street_id=payload["street"],
                status=payload["status"],
                assigned=payload["assigned"],
                answered=payload["answered"],
                on_site=payload["on_site"],
                households=payload["households"],
                checked=payload["checked"],
            )
            if was is not None:
                grid.mobilised_at, grid.escalated, grid.missed = (
                    was.mobilised_at,
                    was.escalated,
                    was.missed,
                )
            if grid.mobilised_at is None and grid.status in _MOBILISED:
                grid.mobilised_at = at
            self.grids[gid] = grid
        elif kind in ("grid.escalated", "grid.missed"):
            found = self.grids.get(int(subject_id))
            if found is not None:
                if kind == "grid.escalated":
                    found.escalated = True
                else:
                    found.missed = True
        elif subject_type == "responder" and "status" in payload:
            rid = int(subject_id)
            was_person = self.people.get(rid)
            grid_id = payload.get("grid", was_person.grid_id if was_person else None)
            self.people[rid] = PersonAt(rid, grid_id, payload["status"])
        elif kind == "mobilisation.stood_down":
            self.stood_down_at = at

    def coverage(
        self,
        mobilisation: Mobilisation,
        street_id: int | None = None,
        community_id: int | None = None,
    ) -> Coverage:
        """Coverage as the live query gave it then, for the whole or a street or community."""
        grids = list(self.in_scope(street_id, community_id))
        by_status = {s.value: 0 for s in GridStatus}
        for g in grids:
            by_status[g.status] += 1
        assert self.at is not None or not grids
        end = self.stood_down_at or self.at or mobilisation.t0
        return figures_to_coverage(
            mobilisation,
            end,
            by_status,
            sum(g.households for g in grids),
            sum(g.checked for g in grids),
            curve_of(mobilisation, [g.mobilised_at for g in grids]),
        )

    def in_scope(self, street_id: int | None, community_id: int | None) -> Iterator[GridAt]:
        for g in self.grids.values():
            if (street_id is None or g.street_id == street_id) and (
                community_id is None or g.community_id == community_id
            ):
                yield g

    # -- snapshots --------------------------------------------------------------------------

    def dump(self) -> bytes:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        doc = {
            "mseq": self.mseq,
            "at": iso(self.at),
            "stood_down_at": iso(self.stood_down_at),
            "grids": [
                [
                    g.grid_id,
                    g.community_id,
                    g.street_id,
                    g.status,
                    g.assigned,
                    g.answered,
                    g.on_site,
                    g.households,
                    g.checked,
                    iso(g.mobilised_at),
                    g.escalated,
                    g.missed,
                ]
                for g in self.grids.values()
            ],
            "people": [[p.responder_id, p.grid_id, p.status] for p in self.people.values()],
        }
        return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)

    @classmethod
    def load(cls, mobilisation_id: int, data: bytes) -> State:
        def when(s: str | None) -> datetime | None:
            return datetime.fromisoformat(s) if s else None

        doc = json.loads(zlib.decompress(data))
        state = cls(mobilisation_id, doc["mseq"], when(doc["at"]), when(doc["stood_down_at"]))
        for row in doc["grids"]:
            grid, community, street, status, assigned, answered, on_site, households, checked = row[
                :9
            ]
            state.grids[grid] = GridAt(
                grid, community, street, status, assigned, answered, on_site, households, checked,
                when(row[9]), row[10], row[11],
            )  # fmt: skip
        for rid, gid, status in doc["people"]:
            state.people[rid] = PersonAt(rid, gid, status)
        return state


def _fold(state: State, rows: Iterable[Any]) -> State:
    for mseq, at, _, kind, subject_type, subject_id, payload in rows:
        state.apply(mseq, at, kind, subject_type, subject_id, payload or {})
    return state


def state_at(session: Session, mobilisation: Mobilisation, at: datetime) -> State:
    """The mobilisation as it stood at `at`: the nearest snapshot taken no later, then the
    events after it up to `at` (never more than one snapshot interval of them)."""
    snapshot = session.execute(
        select(EventSnapshot.mseq, EventSnapshot.state)
        .where(EventSnapshot.mobilisation_id == mobilisation.id, EventSnapshot.at <= at)
        .order_by(EventSnapshot.mseq.desc())
        .limit(1)
    ).first()
    state = State(mobilisation.id) if snapshot is None else State.load(mobilisation.id, snapshot[1])
    where = [Event.mseq > state.mseq, Event.occurred_at <= at]
    # Times rise with the sequence, so the next snapshot (taken after `at`) bounds the scan.
    bound = session.scalar(
        select(func.min(EventSnapshot.mseq)).where(
            EventSnapshot.mobilisation_id == mobilisation.id, EventSnapshot.mseq > state.mseq
        )
    )
    if bound is not None:
        where.append(Event.mseq <= bound)
    state = _fold(state, read_log(session, mobilisation.id, *where))
    if state.at is None or state.at < at:
        state.at = at  # nothing else happened until then
    return state


def take_snapshots(session: Session, mobilisation_id: int, every: int) -> int:
    """Snapshot the mobilisation's state after each further `every` committed events; how
    many were taken. Racing schedulers take the same snapshots: the key keeps one."""
    last = session.scalar(
        select(func.max(EventSnapshot.mseq)).where(EventSnapshot.mobilisation_id == mobilisation_id)
    )
    newest = session.scalar(
        select(EventCounter.last_mseq).where(EventCounter.mobilisation_id == mobilisation_id)
    )
    if not newest or newest - (last or 0) < every:
        return 0
    if last is None:
        state = State(mobilisation_id)
    else:
        data = session.scalar(
            select(EventSnapshot.state).where(
                EventSnapshot.mobilisation_id == mobilisation_id, EventSnapshot.mseq == last
            )
        )
        assert data is not None
        state = State.load(mobilisation_id, data)
    taken = 0
    while newest - state.mseq >= every:
        _fold(
            state,
            read_log(
                session, mobilisation_id, Event.mseq > state.mseq, Event.mseq <= state.mseq + every
            ),
        )
        assert state.at is not None
        insert_if_absent(
            session,
            table_of(EventSnapshot),
            {
                "mobilisation_id": mobilisation_id,
                "mseq": state.mseq,
                "at": state.at,
                "state": state.dump(),
            },
        )
        taken += 1
    return taken


def state_in(
    session: Session,
    *,
    mobilisation: Mobilisation,
    at: datetime,
    street_id: int | None = None,
    community_id: int | None = None,
) -> tuple[State, Coverage, list[GridAt], list[PersonAt]]:
    """The state at `at` of a mobilisation or a street or community of it (served through
    `in_scope`): the whole state, the place's coverage, its grids and the people there."""
    state = state_at(session, mobilisation, at)
    grids = sorted(state.in_scope(street_id, community_id), key=lambda g: g.grid_id)
    mine = {g.grid_id for g in grids}
    whole = street_id is None and community_id is None
    people = sorted(
        (p for p in state.people.values() if whole or p.grid_id in mine),
        key=lambda p: p.responder_id,
    )
    return state, state.coverage(mobilisation, street_id, community_id), grids, people


def snapshot_due(session: Session, every: int) -> int:
    """Take the snapshots due on any mobilisation (the scheduler's tick); how many. The
    counters say how far each log has gone, so a tick costs no scan of the log."""
    taken = (
        select(EventSnapshot.mobilisation_id, func.max(EventSnapshot.mseq).label("last"))
        .group_by(EventSnapshot.mobilisation_id)
        .subquery()
    )
    due = session.scalars(
        select(EventCounter.mobilisation_id)
        .outerjoin(taken, taken.c.mobilisation_id == EventCounter.mobilisation_id)
        .where(EventCounter.last_mseq - func.coalesce(taken.c.last, 0) >= every)
        .order_by(EventCounter.mobilisation_id)
    ).all()
    return sum(take_snapshots(session, mobilisation_id, every) for mobilisation_id in due)
