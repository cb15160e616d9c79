"""Importing over a district that exists is an update by code: nothing of the past is lost."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import shapely
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle
from mobilize.bundle.model import BuildingRecord, ResponderRecord
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts import edit
from mobilize.districts.importer import ImportResult, import_district
from mobilize.districts.queries import page
from mobilize.districts.update import DistrictInWartime
from mobilize.mobilisation import switch
from mobilize.models import (
    Assignment,
    Building,
    Event,
    Grid,
    Household,
    Mobilisation,
    Responder,
    ResponderKind,
    ServiceRecord,
)
from mobilize.review import replay, report
from tests.wartime import activated, check_in_at_centre, district_commander, write

NEWCOMER = ResponderRecord(
    code="R-NEW-1",
    name="新来的志愿者",
    phone="13900009999",
    kind="volunteer",
    unit=None,
    team=None,
    home_grid=None,
    lon=None,
    lat=None,
    skills=("first_aid",),
)


def imported(
    engine: Engine, bundle: Bundle, clock: ManualClock, *, dry_run: bool = False
) -> ImportResult:
    with transaction(make_sessionmaker(engine)) as session:
        return import_district(session, bundle=bundle, actor="test", clock=clock, dry_run=dry_run)


def with_households(
    bundle: Bundle, tags: list[int] | None = None, keep: list[int] | None = None
) -> Bundle:
    h = bundle.households
    table = h.subset(list(range(len(h))) if keep is None else keep)
    if tags is not None:
        table.tags[: len(tags)] = tags
    return dataclasses.replace(bundle, households=table)


def codes_to_ids(
    session: Session, model: type[Grid] | type[Responder] | type[Household]
) -> dict[str, int]:
    return dict(session.execute(select(model.code, model.id)).all())


def test_an_update_after_a_mobilisation_keeps_every_past_figure(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    m = activated(engine, tiny_bundle, clock)
    with Session(engine) as session:
        came = session.scalars(
            select(Assignment).where(Assignment.mobilisation_id == m.id).order_by(Assignment.id)
        ).all()[:3]
    clock.advance(timedelta(minutes=25))
    for a in came:
        check_in_at_centre(engine, a, clock)
    clock.advance(timedelta(minutes=95))
    write(
        engine,
        switch.stand_down,
        actor=district_commander(engine),
        clock=clock,
        mobilisation_id=m.id,
    )

    def history() -> tuple[Any, ...]:
        with Session(engine) as session:
            mobilisation = session.get_one(Mobilisation, m.id)
            return (
                dataclasses.asdict(
                    report.build(session, mobilisation=mobilisation, now=m.deadline)
                ),
                replay.state_at(session, mobilisation, m.t0 + timedelta(minutes=30)),
                session.execute(
                    select(
                        ServiceRecord.responder_id, ServiceRecord.hours, ServiceRecord.points
                    ).order_by(ServiceRecord.id)
                ).all(),
                session.execute(
                    select(
                        Assignment.id,
                        Assignment.responder_id,
                        Assignment.grid_id,
                        Assignment.status,
                    ).order_by(Assignment.id)
                ).all(),
                session.execute(select(Event.seq, Event.kind).order_by(Event.seq)).all(),
            )

    before = history()
    with Session(engine) as session:
        ids_before = {model: codes_to_ids(session, model) for model in (Grid, Responder, Household)}
        gone = session.get_one(Responder, came[0].responder_id)
    assert len(before[2]) == 3  # the three who came have their hours
    # The update: one household's tags, one person's phone, the first who came retired (left
    # the district), a newcomer enrolled.
    household = tiny_bundle.households.code[0]
    new_tags = int(tiny_bundle.households.tags[0]) ^ 1
    moved_phone = next(r for r in tiny_bundle.responders if r.code != gone.code)
    responders = [
        dataclasses.replace(r, phone="13900001111") if r.code == moved_phone.code else r
        for r in tiny_bundle.responders
        if r.code != gone.code
    ] + [NEWCOMER]
    # A building finished in a micro-grid, its first household moved in.
    grid = next(g for g in tiny_bundle.grids if g.level == "micro")
    spot = grid.geom.representative_point()
    finished = BuildingRecord("B-NEW", "新楼", "新华路8号", spot.x, spot.y, grid.code, 18)
    h = with_households(tiny_bundle, tags=[new_tags]).households
    h = dataclasses.replace(
        h,
        code=[*h.code, "H-NEW"],
        lon=np.append(h.lon, spot.x),
        lat=np.append(h.lat, spot.y),
        size=np.append(h.size, 3),
        tags=np.append(h.tags, 0),
        micro_grid=[*h.micro_grid, grid.code],
        building=[*h.building, "B-NEW"],
        building_unit=[*h.building_unit, "1"],
        door=[*h.door, "1801"],
        address=[*h.address, "新华路8号1单元1801室"],
    )
    updated = dataclasses.replace(
        tiny_bundle,
        households=h,
        buildings=[*tiny_bundle.buildings, finished],
        responders=responders,
    )
    clock.advance(timedelta(days=7))
    result = imported(engine, updated, clock)

    assert result.updated
    assert result.difference.as_dict() == {
        "streets": {"added": [], "changed": [], "retired": []},
        "communities": {"added": [], "changed": [], "retired": []},
        # One more household there: the grid's and its general grid's household counts.
        "grids": {"added": [], "changed": [grid.parent, grid.code], "retired": []},
        "buildings": {"added": ["B-NEW"], "changed": [], "retired": []},
        "households": {"added": ["H-NEW"], "changed": [household], "retired": []},
        "units": {"added": [], "changed": [], "retired": []},
        "pairings": {"added": [], "changed": [], "retired": []},
        "teams": {"added": [], "changed": [], "retired": []},
        "responders": {"added": ["R-NEW-1"], "changed": [moved_phone.code], "retired": [gone.code]},
    }
    assert history()[:4] == before[:4]  # report, replay, hours, assignments: as they were
    events = history()[4]
    assert events[:-1] == before[4] and events[-1][1] == "district.updated"
    with Session(engine) as session:
        for model, ids in ids_before.items():
            now = codes_to_ids(session, model)
            assert {c: now[c] for c in ids} == ids  # nothing renumbered
        the_one_who_left = session.get_one(Responder, gone.id)
        assert the_one_who_left.retired_at == clock.now()
        assert session.get_one(Household, ids_before[Household][household]).tags == new_tags
        assert (
            session.get_one(Responder, ids_before[Responder][moved_phone.code]).phone
            == "13900001111"
        )
        newcomer = session.scalars(select(Household).where(Household.code == "H-NEW")).one()
        assert (newcomer.address, newcomer.door, newcomer.micro_grid_id) == (
            "新华路8号1单元1801室",
            "1801",
            ids_before[Grid][grid.code],
        )
        building = session.get_one(Building, newcomer.building_id)
        assert (building.code, building.floors, building.micro_grid_id) == (
            "B-NEW",
            18,
            ids_before[Grid][grid.code],
        )
        event = session.scalars(select(Event).where(Event.kind == "district.updated")).one()
        assert event.payload["difference"]["responders"]["retired"] == [gone.code]
        assert event.payload["difference"]["buildings"]["added"] == ["B-NEW"]
        listed = page(session, Responder, actor=district_commander(engine), first=500).rows
        assert gone.id not in {r.id for r in listed} and "R-NEW-1" in {r.code for r in listed}


def test_the_same_bundle_again_changes_nothing(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    first = imported(engine, tiny_bundle, clock)
    with Session(engine) as session:
        ids = codes_to_ids(session, Household)
    again = imported(engine, tiny_bundle, clock)
    assert again.updated and not again.difference and again.district_id == first.district_id
    with Session(engine) as session:
        assert codes_to_ids(session, Household) == ids
        kinds = session.scalars(select(Event.kind).order_by(Event.seq)).all()
    assert kinds == ["district.imported", "district.updated"]


def test_a_dry_run_names_the_difference_and_writes_nothing(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    imported(engine, tiny_bundle, clock)
    fewer = with_households(tiny_bundle, keep=list(range(1, len(tiny_bundle.households))))
    result = imported(engine, fewer, clock, dry_run=True)
    assert result.difference.kinds["households"].retired == [tiny_bundle.households.code[0]]
    assert result.event_seq is None
    with Session(engine) as session:
        first = session.scalars(
            select(Household).where(Household.code == tiny_bundle.households.code[0])
        ).one()
        assert first.retired_at is None
        assert session.scalars(select(Event.kind)).all() == ["district.imported"]


def test_in_wartime_data_changes_land_and_structure_in_the_area_is_refused(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    m = activated(engine, tiny_bundle, clock)
    flipped = int(tiny_bundle.households.tags[0]) ^ 2
    imported(engine, with_households(tiny_bundle, tags=[flipped]), clock)  # a tag: lands
    # A micro-grid of the area retired with its households: refused, naming the mobilisation.
    grid = next(g for g in tiny_bundle.grids if g.level == "micro")
    keep = [i for i, code in enumerate(tiny_bundle.households.micro_grid) if code != grid.code]
    fewer = dataclasses.replace(
        with_households(tiny_bundle, tags=[flipped], keep=keep),
        grids=[g for g in tiny_bundle.grids if g.code != grid.code],
        buildings=[b for b in tiny_bundle.buildings if b.micro_grid != grid.code],
        responders=[r for r in tiny_bundle.responders if r.home_grid != grid.code],
    )
    with pytest.raises(DistrictInWartime, match=f"Mobilisation {m.id}") as refused:
        imported(engine, fewer, clock)
    assert f"grids {grid.code}" in refused.value.message
    # A building put up in the area: structure too.
    spot = grid.geom.representative_point()
    raised = BuildingRecord("B-LIVE", "临建", "新华路9号", spot.x, spot.y, grid.code, 2)
    with pytest.raises(DistrictInWartime, match="buildings B-LIVE"):
        imported(
            engine,
            dataclasses.replace(
                with_households(tiny_bundle, tags=[flipped]),
                buildings=[*tiny_bundle.buildings, raised],
            ),
            clock,
        )
    with Session(engine) as session:
        assert session.scalars(select(Grid).where(Grid.code == grid.code)).one().retired_at is None
        kinds = session.scalars(select(Event.kind).where(Event.kind.like("district.%"))).all()
    assert kinds == ["district.imported", "district.updated"]


def test_a_household_that_moves_is_structure_in_wartime_and_lands_in_peacetime(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    m = activated(engine, tiny_bundle, clock)
    moved = with_households(tiny_bundle)
    moved.households.lon[1] += 0.00001  # about a metre east, same micro-grid
    code = tiny_bundle.households.code[1]
    with pytest.raises(DistrictInWartime, match=f"households {code}"):
        imported(engine, moved, clock)
    write(
        engine,
        switch.stand_down,
        actor=district_commander(engine),
        clock=clock,
        mobilisation_id=m.id,
    )
    result = imported(engine, moved, clock)
    assert result.difference.kinds["households"].changed == [code]
    with Session(engine) as session:
        stored = session.scalars(select(Household).where(Household.code == code)).one()
    assert abs(stored.geom.x - float(moved.households.lon[1])) < 1e-9


def test_a_new_micro_grid_arrives_whole_with_its_centre_and_count(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    imported(engine, tiny_bundle, clock)
    parent = next(g for g in tiny_bundle.grids if g.level == "micro")
    sibling = next(g for g in tiny_bundle.grids if g.level == "general")
    corner = sibling.geom.representative_point()
    drawn = shapely.MultiPolygon(
        [shapely.box(corner.x, corner.y, corner.x + 1e-4, corner.y + 1e-4)]
    )
    new = dataclasses.replace(parent, code="NEW-M1", name="新网格", parent=sibling.code, geom=drawn)
    result = imported(
        engine, dataclasses.replace(tiny_bundle, grids=[*tiny_bundle.grids, new]), clock
    )
    assert result.difference.kinds["grids"].added == ["NEW-M1"]
    with Session(engine) as session:
        grid = session.scalars(select(Grid).where(Grid.code == "NEW-M1")).one()
    assert grid.household_count == 0 and drawn.covers(grid.centre)


def test_people_enrolled_through_the_api_outlive_a_bundle_that_does_not_know_them(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    imported(engine, tiny_bundle, clock)
    volunteer = edit.PersonValues(name="李四", phone="13900002222", kind=ResponderKind.VOLUNTEER)
    write(
        engine,
        edit.add_responder,
        actor=district_commander(engine),
        clock=clock,
        district_id=imported(engine, tiny_bundle, clock).district_id,
        code="R-APP-1",
        values=volunteer,
    )
    # Next week's bundle, from a source that never heard of them: they stay.
    again = imported(engine, tiny_bundle, clock)
    assert again.difference.kinds["responders"].retired == []
    with Session(engine) as session:
        kept = session.scalars(select(Responder).where(Responder.code == "R-APP-1")).one()
        assert kept.retired_at is None
    # A bundle that names them takes them over; one that then leaves them out retires them.
    named = dataclasses.replace(
        tiny_bundle,
        responders=[dataclasses.replace(NEWCOMER, code="R-APP-1"), *tiny_bundle.responders],
    )
    assert imported(engine, named, clock).difference.kinds["responders"].changed == ["R-APP-1"]
    assert imported(engine, tiny_bundle, clock).difference.kinds["responders"].retired == [
        "R-APP-1"
    ]
