"""A year of peacetime behind a generated district: the same seed gives the same year; every
community patrols weekly and holds a monthly event; some people are away today; nobody's
points go below zero; a second call adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.generate.history import History, write_history
from mobilize.models import Activity, Enrolment, Redemption, Responder, ServiceRecord
from mobilize.peacetime.availability import away_at
from tests.conftest import wipe

DAY = datetime(2026, 7, 1, tzinfo=UTC)
# Who earned what when, by code (ids differ between databases).
LEDGER = (
    select(Responder.code, ServiceRecord.released_at, ServiceRecord.points)
    .join(Responder, Responder.id == ServiceRecord.responder_id)
    .order_by(ServiceRecord.released_at, Responder.code)
)


def lived(engine: Engine, bundle: Bundle, seed: int) -> History:
    clock = ManualClock(DAY)
    with transaction(make_sessionmaker(engine)) as session:
        district_id = import_district(session, bundle=bundle, actor="t", clock=clock).district_id
        assert district_id is not None
        return write_history(session, district_id=district_id, clock=clock, seed=seed)


def test_a_year_of_peacetime_is_lived_in_and_reproducible(
    engine: Engine, small_bundle: Bundle
) -> None:
    year = lived(engine, small_bundle, seed=3)
    communities = len(small_bundle.communities)
    assert year.activities == communities * (52 + 12)  # a weekly patrol, a monthly event
    with Session(engine) as session:
        away = session.scalar(select(func.count()).where(away_at(DAY)))
        roster = session.scalar(select(func.count()).select_from(Responder))
        assert away is not None and roster is not None and 0 < away < roster * 0.05
        assert session.scalar(select(func.count()).select_from(Enrolment)) == year.enrolments > 0
        # Every activity lies in the year before the day.
        first, last = session.execute(
            select(func.min(Activity.starts_at), func.max(Activity.ends_at))
        ).one()
        assert (DAY - first).days <= 366 and last < DAY
        earned = dict(
            session.execute(
                select(ServiceRecord.responder_id, func.sum(ServiceRecord.points)).group_by(
                    ServiceRecord.responder_id
                )
            ).all()
        )
        spent = dict(
            session.execute(
                select(Redemption.responder_id, func.sum(Redemption.points)).group_by(
                    Redemption.responder_id
                )
            ).all()
        )
    assert year.redemptions > 0 and all(spent[p] <= earned[p] for p in spent)
    # Once only: the district has its year.
    with transaction(make_sessionmaker(engine)) as session:
        district_id = session.scalars(select(Activity.district_id)).first()
        assert district_id is not None
        again = write_history(session, district_id=district_id, clock=ManualClock(DAY), seed=3)
    assert again == History(0, 0, 0, 0, 0, 0)


def test_the_same_seed_gives_the_same_year(engine: Engine, tiny_bundle: Bundle) -> None:
    first = lived(engine, tiny_bundle, seed=9)
    with Session(engine) as session:
        ledger = session.execute(LEDGER).all()
        leaves = session.scalar(select(func.count()).where(away_at(DAY)))
    wipe(engine)
    second = lived(engine, tiny_bundle, seed=9)
    with Session(engine) as session:
        assert session.execute(LEDGER).all() == ledger
        assert session.scalar(select(func.count()).where(away_at(DAY))) == leaves
    assert first == second
