"""Landing a validated bundle in the database, whole, in the caller's transaction.

The first import of a district writes it; importing over a district with the same code is an
update by code that keeps history (`districts.update`). Households go in through COPY on
PostgreSQL and one executemany on SQLite: half a million rows in seconds."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.bulkwork import without_gc_pauses
from mobilize.bundle.model import Bundle
from mobilize.clock import Clock
from mobilize.districts.update import (
    Difference,
    plan_update,
    refuse_in_wartime,
)
from mobilize.events import record_event
from mobilize.live import credentials_changed
from mobilize.models import (
    LIVE,
    District,
    Mobilisation,
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


@without_gc_pauses()
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
    # The same writing as an update's, against a district with nothing in it yet: every row
    # is an addition.
    progress.step("writing streets, communities, grids, households and forces")
    plan_update(session, district, bundle, clock.now(), write=True, progress=progress)

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
    return ImportResult(
        district.id, bundle.district_code, False, counts, _everything(bundle), event.seq
    )


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
        ("buildings", [b.code for b in bundle.buildings]),
        ("households", list(bundle.households.code)),
        ("units", [u.code for u in bundle.units]),
        ("pairings", [f"{p.unit}/{p.community}" for p in bundle.pairings]),
        ("teams", [t.code for t in bundle.teams]),
        ("responders", [r.code for r in bundle.responders]),
    ):
        difference.kinds[kind].added = codes
    return difference
