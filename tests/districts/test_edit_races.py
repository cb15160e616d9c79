"""Two keepers at once: edits of one household chain (each sees the one before), and two
enrolments of one code end with one person and a clear refusal, never an internal error."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts import edit
from mobilize.districts.importer import import_district
from mobilize.errors import InvalidInput
from mobilize.models import Event, Household, Responder, ResponderKind
from tests.wartime import district_commander, write

RACERS = 6


def _at_once(engine: Engine, calls: list[Callable[[], Any]]) -> list[Any]:
    start = threading.Barrier(len(calls))

    def run(fn: Callable[[], Any]) -> Any:
        start.wait()
        try:
            return fn()
        except InvalidInput as exc:
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _enrol_at_once(
    engine: Engine,
    bundle: Bundle,
    clock: ManualClock,
    person: edit.PersonValues,
    codes: list[str],
) -> list[Any]:
    """The district imported, then one keeper per code enrolling `person` at the same moment."""
    with transaction(make_sessionmaker(engine)) as session:
        result = import_district(session, bundle=bundle, actor="test", clock=clock)
    actor = district_commander(engine)
    return _at_once(
        engine,
        [
            partial(
                write,
                engine,
                edit.add_responder,
                actor=actor,
                clock=clock,
                district_id=result.district_id,
                code=code,
                values=person,
            )
            for code in codes
        ],
    )


def test_simultaneous_edits_of_one_household_each_start_from_the_last(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    actor = district_commander(engine)
    code = tiny_bundle.households.code[0]
    with Session(engine) as session:
        pk = session.scalars(select(Household.id).where(Household.code == code)).one()
    start = int(tiny_bundle.households.size[0])
    sizes = [start + 10 + i for i in range(RACERS)]
    _at_once(
        engine,
        [
            partial(
                write,
                engine,
                edit.edit_household,
                actor=actor,
                clock=clock,
                household_id=pk,
                size=size,
            )
            for size in sizes
        ],
    )
    with Session(engine) as session:
        chain = [
            e.payload["size"]
            for e in session.scalars(
                select(Event).where(Event.kind == "household.edited").order_by(Event.seq)
            )
        ]
        final = session.get_one(Household, pk).size
    # Every edit landed once, each from the value the one before it left.
    assert sorted(after for _, after in chain) == sizes
    assert [before for before, _ in chain] == [start] + [after for _, after in chain[:-1]]
    assert final == chain[-1][1]


def test_two_enrolments_of_one_code_leave_one_person_and_one_clear_refusal(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    person = edit.PersonValues(name="赵六", phone="13900003333", kind=ResponderKind.VOLUNTEER)
    outcomes = _enrol_at_once(engine, tiny_bundle, clock, person, ["R-RACE"] * RACERS)
    refused = [o for o in outcomes if isinstance(o, InvalidInput)]
    assert len(refused) == RACERS - 1 and {r.field for r in refused} == {"code"}
    with Session(engine) as session:
        assert len(session.scalars(select(Responder).where(Responder.code == "R-RACE")).all()) == 1


def test_two_enrolments_of_one_phone_leave_one_person_and_one_clear_refusal(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    """A phone is how a person signs in: two keepers enrolling it at once under two codes
    end with one person, and the others told whose phone it is."""
    person = edit.PersonValues(name="钱七", phone="13900004444", kind=ResponderKind.VOLUNTEER)
    codes = [f"R-PHONE-{i}" for i in range(RACERS)]
    outcomes = _enrol_at_once(engine, tiny_bundle, clock, person, codes)
    refused = [o for o in outcomes if isinstance(o, InvalidInput)]
    assert len(refused) == RACERS - 1
    assert {r.field for r in refused} == {"phone"}
    assert all("'13900004444' is 钱七's already (R-PHONE-" in str(r) for r in refused)
    with Session(engine) as session:
        holders = session.scalars(select(Responder).where(Responder.phone == "13900004444"))
        assert len(holders.all()) == 1
