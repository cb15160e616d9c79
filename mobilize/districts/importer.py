"""Landing a validated bundle in the database, whole, in the caller's transaction.

The first import of a district writes it; importing over a district with the same code is an
update by code that keeps history (`districts.update`). Households go in through COPY on
PostgreSQL and one executemany on SQLite: half a million rows in seconds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import shapely
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from mobilize.bundle.model import Bundle
from mobilize.clock import Clock
from mobilize.districts.households import write_households
from mobilize.districts.update import (
    Difference,
    plan_update,
    refuse_in_wartime,
)
from mobilize.events import record_event
from mobilize.live import credentials_changed
from mobilize.models import (
    LIVE,
    Community,
    District,
    Grid,
    GridLevel,
    Mobilisation,
    Pairing,
    Responder,
    Street,
    Team,
    Unit,
)
from mobilize.progress import NoProgress, Progress


@dataclass(frozen=True)
class ImportResult:
    district_id: int | None  # None: a dry run of a district not yet in the database
    district_code: str
    updated: bool  # the district existed: this import was an update
    counts: dict[str, int]
    difference: Difference
    event_seq: int | None  # None: a dry run, nothing written


def _insert_coded(session: Session, model: Any, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert rows that carry a `code`; return code -> new id (RETURNING, in input order)."""
    if not rows:
        return {}
    result = session.execute(insert(model).returning(model.id, sort_by_parameter_order=True), rows)
    return dict(zip((row["code"] for row in rows), result.scalars(), strict=True))


def import_district(
    session: Session,
    *,
    bundle: Bundle,
    actor: str,
    clock: Clock,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Write `bundle` as a district, or update the one with the same code keeping its
    history; flush, never commit. `dry_run`: only the difference, nothing written."""
    progress = progress or NoProgress()
    existing = session.scalar(select(District).where(District.code == bundle.district_code))
    if existing is not None:
        return _update(session, existing, bundle, actor, clock, progress, dry_run=dry_run)
    if dry_run:
        return ImportResult(
            None, bundle.district_code, False, bundle.counts(), _everything(bundle), None
        )
    credentials_changed(session, clock.now())  # bindings may name this district's rows at last
    progress.step("writing the district, streets and communities")
    district = District(
        code=bundle.district_code,
        name=bundle.district_name,
        source_crs=bundle.source_crs,
        geom=bundle.district_geom,
        imported_at=clock.now(),
    )
    session.add(district)
    session.flush()
    did = district.id
    street_ids = _insert_coded(
        session,
        Street,
        [
            {"district_id": did, "code": s.code, "name": s.name, "geom": s.geom}
            for s in bundle.streets
        ],
    )
    community_ids = _insert_coded(
        session,
        Community,
        [
            {
                "district_id": did,
                "street_id": street_ids[c.street],
                "code": c.code,
                "name": c.name,
                "kind": c.kind,
                "secretary_code": c.secretary,
                "geom": c.geom,
            }
            for c in bundle.communities
        ],
    )

    progress.step("writing grids")
    per_micro = Counter(bundle.households.micro_grid)
    general = [g for g in bundle.grids if g.level == GridLevel.GENERAL]
    micro = [g for g in bundle.grids if g.level == GridLevel.MICRO]
    per_general: Counter[str] = Counter()
    for g in micro:
        per_general[g.parent] += per_micro.get(g.code, 0)
    community_of = {g.code: g.parent for g in general}
    community_of.update({g.code: community_of[g.parent] for g in micro})
    grid_ids: dict[str, int] = {}
    for level, grids, per_grid in (
        (GridLevel.GENERAL, general, per_general),
        (GridLevel.MICRO, micro, per_micro),
    ):
        grid_ids |= _insert_coded(
            session,
            Grid,
            [
                {
                    "district_id": did,
                    "community_id": community_ids[community_of[g.code]],
                    "parent_id": grid_ids[g.parent] if level == GridLevel.MICRO else None,
                    "level": level.value,
                    "code": g.code,
                    "name": g.name,
                    "household_count": per_grid.get(g.code, 0),
                    "geom": g.geom,
                    "centre": centre,
                }
                for g, centre in zip(
                    grids, shapely.point_on_surface([g.geom for g in grids]), strict=True
                )
            ],
        )

    progress.step("writing households", total=len(bundle.households))
    write_households(session, bundle, did, grid_ids, progress)

    progress.step("writing units, pairings, teams and responders")
    unit_ids = _insert_coded(
        session,
        Unit,
        [
            {
                "district_id": did,
                "code": u.code,
                "name": u.name,
                "geom": shapely.Point(u.lon, u.lat),
            }
            for u in bundle.units
        ],
    )
    if bundle.pairings:
        session.execute(
            insert(Pairing),
            [
                {
                    "district_id": did,
                    "unit_id": unit_ids[p.unit],
                    "community_id": community_ids[p.community],
                    "wartime_quota": p.wartime_quota,
                }
                for p in bundle.pairings
            ],
        )
    team_ids = _insert_coded(
        session,
        Team,
        [
            {
                "district_id": did,
                "code": t.code,
                "name": t.name,
                "kind": t.kind,
                "unit_id": unit_ids[t.unit] if t.unit else None,
            }
            for t in bundle.teams
        ],
    )
    if bundle.responders:
        session.execute(
            insert(Responder),
            [
                {
                    "district_id": did,
                    "code": r.code,
                    "name": r.name,
                    "phone": r.phone,
                    "kind": r.kind,
                    "unit_id": unit_ids[r.unit] if r.unit else None,
                    "team_id": team_ids[r.team] if r.team else None,
                    "home_grid_id": grid_ids[r.home_grid] if r.home_grid else None,
                    "geom": shapely.Point(r.lon, r.lat) if r.lon is not None else None,
                    "skills": list(r.skills),
                    "seniority": r.seniority,
                }
                for r in bundle.responders
            ],
        )

    counts = bundle.counts()
    event = record_event(
        session,
        clock=clock,
        actor=actor,
        kind="district.imported",
        subject_type="district",
        subject_id=bundle.district_code,
        payload={
            "counts": counts,
            "source_crs": bundle.source_crs,
            "warnings": len(bundle.warnings),
        },
    )
    assert event is not None  # a district's event (no mobilisation): written at once
    return ImportResult(did, bundle.district_code, False, counts, _everything(bundle), event.seq)


def _update(
    session: Session,
    district: District,
    bundle: Bundle,
    actor: str,
    clock: Clock,
    progress: Progress,
    *,
    dry_run: bool,
) -> ImportResult:
    """Compare first (refusing a change to the structure of a live mobilisation's area,
    naming it), then write the difference and one event that lists it."""
    now = clock.now()
    counts = bundle.counts()
    live = session.scalar(
        select(Mobilisation.id)
        .where(Mobilisation.district_id == district.id, Mobilisation.status.in_(LIVE))
        .limit(1)
    )
    if dry_run or live is not None:  # the whole difference first: it may be refused
        progress.step(f"comparing with district {bundle.district_code} as it is")
        difference, moved = plan_update(session, district, bundle, now, write=False)
        refuse_in_wartime(session, district, bundle, difference, moved)
        if dry_run:
            return ImportResult(district.id, bundle.district_code, True, counts, difference, None)
    progress.step("writing what changed")
    difference, _ = plan_update(session, district, bundle, now, write=True)
    if difference.kinds["responders"]:
        credentials_changed(session, now)  # a retired person's sessions end with them
    session.flush()
    event = record_event(
        session,
        clock=clock,
        actor=actor,
        kind="district.updated",
        subject_type="district",
        subject_id=bundle.district_code,
        payload={
            "difference": difference.as_dict(),
            "counts": counts,
            "source_crs": bundle.source_crs,
            "warnings": len(bundle.warnings),
        },
    )
    assert event is not None  # a district's event: written at once
    return ImportResult(district.id, bundle.district_code, True, counts, difference, event.seq)


def _everything(bundle: Bundle) -> Difference:
    """A new district's difference: everything added."""
    difference = Difference()
    for kind, codes in (
        ("streets", [s.code for s in bundle.streets]),
        ("communities", [c.code for c in bundle.communities]),
        ("grids", [g.code for g in bundle.grids]),
        ("households", list(bundle.households.code)),
        ("units", [u.code for u in bundle.units]),
        ("pairings", [f"{p.unit}/{p.community}" for p in bundle.pairings]),
        ("teams", [t.code for t in bundle.teams]),
        ("responders", [r.code for r in bundle.responders]),
    ):
        difference.kinds[kind].added = codes
    return difference
