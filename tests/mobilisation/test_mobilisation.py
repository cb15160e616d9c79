"""The wartime switch on a real database: who goes where, exactly once, stably."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor, Binding
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.errors import DomainError, Forbidden, InvalidInput, NotFound
from mobilize.mobilisation import assignments, callup, rules, switch
from mobilize.mobilisation.area import AreaScope
from mobilize.mobilisation.outcome import (
    AlreadyActive,
    AlreadyStoodDown,
    InvalidTransition,
    Outcome,
)
from mobilize.models import (
    HOLDING,
    Assignment,
    Community,
    Event,
    Grid,
    Mobilisation,
    MobilisationArea,
    Notification,
    Pairing,
    PartyOrganisation,
    Responder,
    Role,
    Street,
)
from mobilize.notify import LogNotifier
from mobilize.peacetime.availability import is_away
from mobilize.worker.inprocess import InProcessDispatcher
from tests.people import away_from_now
from tests.wartime import activate_now, district_commander, grid_of, phone, street_commander, write


@pytest.fixture
def tiny(engine: Engine, tiny_bundle: Bundle, clock: ManualClock) -> Engine:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    return engine


@pytest.fixture
def small(engine: Engine, small_bundle: Bundle, clock: ManualClock) -> Engine:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=small_bundle, actor="test", clock=clock)
    return engine


def activate(
    engine: Engine, actor: Actor, clock: ManualClock, scope: str = "district", **kwargs: object
) -> Outcome:
    return activate_now(
        engine,
        actor=actor,
        clock=clock,
        scope=AreaScope.parse(scope),
        kind=str(kwargs.pop("kind", "epidemic")),
        title=str(kwargs.pop("title", "演练 drill")),
        **kwargs,
    )


def plan_of(engine: Engine, mobilisation_id: int) -> dict[str, tuple[str | None, str, str]]:
    with Session(engine) as session:
        rows = session.execute(
            select(Responder.code, Grid.code, Assignment.role, Assignment.status)
            .join(Responder, Responder.id == Assignment.responder_id)
            .outerjoin(Grid, Grid.id == Assignment.grid_id)
            .where(Assignment.mobilisation_id == mobilisation_id)
        ).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_tiny_activation_exact(tiny: Engine, tiny_bundle: Bundle, clock: ManualClock) -> None:
    outcome = activate(tiny, district_commander(tiny), clock)
    m = outcome.mobilisation
    assert m.deadline - m.t0 == timedelta(minutes=180) and m.t0 == clock.now()
    f = m.figures
    # Worked out from the bundle alone: each micro-grid needs ceil(households / 25), at
    # least 1; everyone is called (the quotas add up to all cadres, every team is in scope).
    per_grid = Counter(tiny_bundle.households.micro_grid)
    micro = [g.code for g in tiny_bundle.grids if g.level == "micro"]
    slots = sum(max(1, math.ceil(per_grid[g] / 25)) for g in micro)
    everyone = len(tiny_bundle.responders)
    assert sum(p.wartime_quota for p in tiny_bundle.pairings) == sum(
        r.kind == "sunk_cadre" for r in tiny_bundle.responders
    )
    assert (f["grids"], f["slots"], f["people_called"], f["people_assigned"]) == (
        20,
        slots,
        everyone,
        everyone,
    )
    assert f["micro_grids_with_minimum"] == 20 and f["unfilled_minimum"] == {}
    assert f["slots_filled"] == slots - sum(f["unfilled_work"].values())
    plan = plan_of(tiny, m.id)
    people = {r.code: r for r in tiny_bundle.responders}
    general_of = {g.code: g.parent or "" for g in tiny_bundle.grids if g.level == "micro"}
    community_of = {g.code: g.parent or "" for g in tiny_bundle.grids if g.level == "general"}
    paired: defaultdict[str | None, set[str]] = defaultdict(set)
    for p in tiny_bundle.pairings:
        paired[p.unit].add(p.community)
    for code, (grid, _, status) in plan.items():
        person = people[code]
        assert status == "assigned" and grid is not None
        if person.kind == "micro_grid_member":
            # To their own grid, or to one of its general grid's others while their own
            # still has someone else on its way.
            assert general_of[grid] == general_of[person.home_grid or ""]
            if grid != person.home_grid:
                assert any(g == person.home_grid for c, (g, _, _) in plan.items() if c != code)
        elif person.kind == "grid_worker":
            assert general_of[grid] == person.home_grid  # inside their general grid
        elif person.kind == "sunk_cadre":
            assert community_of[general_of[grid]] in paired[person.unit]  # pairing kept
    teams: defaultdict[str, set[str]] = defaultdict(set)
    for code, (grid, _, _) in plan.items():
        team = people[code].team
        if team and grid is not None:
            teams[team].add(community_of[general_of[grid]])
    assert teams and all(len(c) == 1 for c in teams.values())  # whole teams
    with Session(tiny) as session:
        orgs = session.scalars(select(PartyOrganisation)).all()
        assert len(orgs) == 2 and all(o.name.endswith("临时党支部") for o in orgs)
        assert all(o.leader_id is not None for o in orgs)
        kinds = Counter(session.scalars(select(Event.kind).where(Event.mobilisation_id == m.id)))
        assert kinds["assignment.created"] == everyone and kinds["mobilisation.activated"] == 1
        assert kinds["party_organisation.opened"] == 2
        assert (
            session.execute(select(func.count()).select_from(Notification)).scalar_one() == everyone
        )


def test_same_data_same_plan(tiny: Engine, clock: ManualClock) -> None:
    actor = district_commander(tiny)
    first = activate(tiny, actor, clock).mobilisation
    with transaction(make_sessionmaker(tiny)) as session:
        switch.stand_down(session, actor=actor, clock=clock, mobilisation_id=first.id)
    second = activate(tiny, actor, clock).mobilisation
    strip = lambda plan: {k: v[:2] for k, v in plan.items()}  # noqa: E731
    assert strip(plan_of(tiny, first.id)) == strip(plan_of(tiny, second.id))


def test_sixteen_threads_overlapping_scopes_make_one_mobilisation(
    small: Engine, clock: ManualClock
) -> None:
    actor = district_commander(small)
    with Session(small) as session:
        communities = session.scalars(select(Community.code).order_by(Community.code)).all()
    scopes = ["district", "street:S01", "street:S02", f"community:{communities[0]}"] * 4

    def attempt(scope: str) -> object:
        try:
            return activate(small, actor, clock, scope=scope).mobilisation.id
        except AlreadyActive as exc:
            return exc

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(attempt, scopes))
    won = [r for r in results if isinstance(r, int)]
    lost = [r for r in results if isinstance(r, AlreadyActive)]
    assert len(won) + len(lost) == 16
    with Session(small) as session:
        active = session.scalars(select(Mobilisation.id)).all()
    # The two streets do not overlap each other: at most those two may both win.
    assert sorted(won) == sorted(active) and 1 <= len(won) <= 2
    assert all(
        e.mobilisation_id in won and f"mobilisation {e.mobilisation_id}" in e.message for e in lost
    )


def test_sixteen_processes_make_one_mobilisation(tiny: Engine, migrated_url: str) -> None:
    env = {"MOBILIZE_DATABASE_URL": migrated_url, "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    command = [
        sys.executable,
        "-m",
        "mobilize.cli",
        "activate",
        "--scope",
        "district",
        "--kind",
        "flood",
        "--title",
        "并发",
        "--json",
    ]
    procs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(16)
    ]
    results = [(p.wait(timeout=240), *p.communicate()) for p in procs]
    codes = Counter(code for code, _, _ in results)
    assert codes == {0: 1, 2: 15}, results
    with Session(tiny) as session:
        [only] = session.scalars(select(Mobilisation.id)).all()
    assert all(f"mobilisation {only}" in err for code, _, err in results if code == 2)


def test_retried_requests_get_the_first_result(tiny: Engine, clock: ManualClock) -> None:
    actor = district_commander(tiny)
    first = activate(tiny, actor, clock, client_mutation_id="abc-1")
    again = activate(tiny, actor, clock, client_mutation_id="abc-1")
    assert again.replayed and again.mobilisation.id == first.mobilisation.id

    def stand_down(key: str | None) -> object:
        try:
            with transaction(make_sessionmaker(tiny)) as session:
                return switch.stand_down(
                    session,
                    actor=actor,
                    clock=clock,
                    mobilisation_id=first.mobilisation.id,
                    client_mutation_id=key,
                )
        except DomainError as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(stand_down, ["sd-1"] * 4 + [None] * 4))
    done = [r for r in results if isinstance(r, Outcome)]
    refused = [r for r in results if isinstance(r, AlreadyStoodDown)]
    assert len(done) + len(refused) == 8
    assert sum(not r.replayed for r in done) == 1  # it happened exactly once
    with Session(tiny) as session:
        assert (
            session.execute(
                select(func.count())
                .select_from(Event)
                .where(Event.kind == "mobilisation.stood_down")
            ).scalar_one()
            == 1
        )
        statuses = set(session.scalars(select(Assignment.status)))
        assert statuses == {"released"}


def test_a_decline_is_refilled_and_acknowledged_people_stay(
    small: Engine, clock: ManualClock
) -> None:
    actor = district_commander(small)
    m = activate(small, actor, clock, scope="street:S01").mobilisation
    with Session(small) as session:
        rows = session.execute(
            select(Assignment, Responder.kind)
            .join(Responder)
            .where(Assignment.mobilisation_id == m.id)
        ).all()
    by_grid: dict[int, list[Assignment]] = defaultdict(list)
    for a, _ in rows:
        by_grid[grid_of(a)].append(a)
    # A grid whose minimum rests on one cadre, in a community with spare hands.
    cadre = next(a for a, kind in rows if kind == "sunk_cadre" and a.role == "minimum")
    me = Actor(
        user_id=9,
        name="cadre",
        address="10.1.1.1",
        bindings=(Binding(Role.RESPONDER, cadre.responder_id, m.district_id),),
    )
    others = [a for a, _ in rows if a.id != cadre.id]
    acknowledged = others[:5]
    for a in acknowledged:
        person = Actor(
            user_id=100 + a.id,
            name="p",
            bindings=(Binding(Role.RESPONDER, a.responder_id, m.district_id),),
        )
        with transaction(make_sessionmaker(small)) as session:
            assignments.acknowledge(session, actor=person, clock=clock, assignment_id=a.id)
    before = plan_of(small, m.id)
    with transaction(make_sessionmaker(small)) as session:
        assignments.decline(
            session,
            actor=me,
            clock=clock,
            assignment_id=cadre.id,
            reason="家中有事 family emergency",
        )
    after = plan_of(small, m.id)
    with Session(small) as session:
        codes = dict(session.execute(select(Responder.id, Responder.code)).all())
        grid_code = session.get_one(Grid, cadre.grid_id).code
        covered = session.execute(
            select(func.count())
            .select_from(Assignment)
            .where(
                Assignment.mobilisation_id == m.id,
                Assignment.grid_id == cadre.grid_id,
                Assignment.status.in_(["assigned", "acknowledged"]),
            )
        ).scalar_one()
        moved = session.scalars(
            select(Event.kind).where(
                Event.kind.in_(["assignment.moved", "assignment.created"]),
                Event.payload["cause"].as_string() == "decline",
            )
        ).all()
    assert after[codes[cadre.responder_id]][2] == "declined"
    assert covered >= 1, f"grid {grid_code} lost its minimum"
    for a in acknowledged:  # committed people were not moved
        assert after[codes[a.responder_id]] == (*before[codes[a.responder_id]][:2], "acknowledged")
    changed = [
        k
        for k in after
        if k in before and after[k][:2] != before[k][:2] and after[k][2] != "declined"
    ]
    assert len(changed) == len([k for k in moved if k == "assignment.moved"])
    with (
        pytest.raises(InvalidTransition, match="declined"),
        transaction(make_sessionmaker(small)) as session,
    ):
        assignments.acknowledge(session, actor=me, clock=clock, assignment_id=cadre.id)


def test_a_replan_offers_no_one_called_before_nor_anyone_busy_in_another_mobilisation(
    small: Engine, clock: ManualClock
) -> None:
    """Two streets in wartime at once. A re-plan of a community of the second may move its
    own people still on their way, and may call people never called there; never someone
    who declined or was called before, and never someone holding a slot in the first, even
    one who now lives inside the community."""
    actor = district_commander(small)
    first = activate(small, actor, clock, scope="street:S01").mobilisation
    second = activate(small, actor, clock, scope="street:S02").mobilisation
    holding = {h.value for h in HOLDING}
    with transaction(make_sessionmaker(small)) as session:
        mine = session.scalars(
            select(Assignment).where(Assignment.mobilisation_id == second.id)
        ).all()
        target = next(a for a in mine if a.role == "minimum")
        community = session.get(Community, target.community_id)
        assert community is not None
        inside = community.geom.representative_point()
        # Someone holding a slot in the first street who has just moved into this community.
        busy = session.scalars(
            select(Responder)
            .join(Assignment, Assignment.responder_id == Responder.id)
            .where(
                Assignment.mobilisation_id == first.id,
                Assignment.status.in_(holding),
                Responder.kind == "volunteer",
                Responder.team_id.is_(None),
            )
        ).first()
        assert busy is not None
        busy.geom = inside
        # A volunteer nobody has called yet, living there too.
        newcomer = Responder(
            district_id=second.district_id,
            code="V-NEW",
            name="新志愿者",
            phone="13900000000",
            kind="volunteer",
            geom=inside,
        )
        session.add(newcomer)
        session.flush()
        newcomer_id, busy_id = newcomer.id, busy.id
    write(
        small,
        assignments.decline,
        actor=phone(target),
        clock=clock,
        assignment_id=target.id,
        reason="家中有事 family emergency",
    )
    with Session(small) as session:
        m = session.get(Mobilisation, second.id)
        assert m is not None
        scope = tuple(
            session.scalars(
                select(MobilisationArea.community_id).where(
                    MobilisationArea.mobilisation_id == m.id
                )
            )
        )
        problem = callup.build_problem(
            session,
            mobilisation=m,
            rule=rules.rule_for(m),
            region=(target.community_id,),
            scope=scope,
            metric=callup.metric_for(session, m.district_id),
            with_teams=False,
            now=clock.now(),
        )
        called = {
            a.responder_id: a
            for a in session.scalars(
                select(Assignment).where(Assignment.mobilisation_id == second.id)
            )
        }
    offered = {p.person_id for p in problem.people}
    assert newcomer_id in offered, "a free volunteer living in the community is offered"
    assert busy_id not in offered, "someone holding a slot in the other mobilisation is offered"
    assert target.responder_id not in offered, "the person who declined is offered again"
    for person in offered - {newcomer_id}:
        a = called.get(person)
        assert a is not None and a.status == "assigned" and a.community_id == target.community_id


def test_street_commanders_act_only_in_their_street(small: Engine, clock: ManualClock) -> None:
    mine, theirs = street_commander(small, "S01"), street_commander(small, "S02")
    with pytest.raises(Forbidden):
        activate(small, mine, clock, scope="street:S02")
    m = activate(small, mine, clock, scope="street:S01").mobilisation
    with Session(small) as session:
        a = session.scalars(
            select(Assignment).where(Assignment.mobilisation_id == m.id, Assignment.role == "work")
        ).first()
        assert a is not None
        own_grid = session.scalars(
            select(Grid.id)
            .join(Community)
            .join(Street)
            .where(Street.code == "S01", Grid.level == "micro", Grid.id != a.grid_id)
        ).first()
        other_grid = session.scalars(
            select(Grid.id)
            .join(Community)
            .join(Street)
            .where(Street.code == "S02", Grid.level == "micro")
        ).first()
    assert own_grid is not None and other_grid is not None
    with pytest.raises(NotFound), transaction(make_sessionmaker(small)) as session:
        assignments.reassign(
            session, actor=theirs, clock=clock, assignment_id=a.id, grid_id=own_grid,
            from_grid_id=a.grid_id,
        )  # fmt: skip
    with pytest.raises(InvalidInput), transaction(make_sessionmaker(small)) as session:
        assignments.reassign(
            session, actor=mine, clock=clock, assignment_id=a.id, grid_id=other_grid,
            from_grid_id=a.grid_id,
        )  # fmt: skip
    with transaction(make_sessionmaker(small)) as session:
        out = assignments.reassign(
            session, actor=mine, clock=clock, assignment_id=a.id, grid_id=own_grid,
            from_grid_id=a.grid_id,
        )  # fmt: skip
        assert out.assignment is not None
        assert out.assignment.grid_id == own_grid and out.assignment.pinned
        assert out.assignment.source == "manual"
    with transaction(make_sessionmaker(small)) as session:
        assignments.set_pinned(session, actor=mine, clock=clock, assignment_id=a.id, pinned=False)
    with transaction(make_sessionmaker(small)) as session:
        assignments.mark_unavailable(
            session, actor=mine, clock=clock, responder_id=a.responder_id, reason="生病 ill"
        )
    with Session(small) as session:
        row = session.get(Assignment, a.id)
        assert row is not None and row.status == "released" and "ill" in (row.reason or "")
        kinds = set(session.scalars(select(Event.kind).where(Event.mobilisation_id == m.id)))
        assert {"assignment.reassigned", "assignment.unpinned", "assignment.released"} <= kinds
        assert is_away(session, a.responder_id, clock.now())  # a leave from now, no end


def test_notifications_go_out_after_commit(tiny: Engine, clock: ManualClock) -> None:
    out = activate(tiny, district_commander(tiny), clock)
    with Session(tiny) as session:
        assert set(session.scalars(select(Notification.status))) == {"pending"}
    dispatcher = InProcessDispatcher(tiny, LogNotifier(), clock)
    dispatcher.dispatch(out.batches)
    dispatcher.wait()
    with Session(tiny) as session:
        assert set(session.scalars(select(Notification.status))) == {"sent"}
        text = session.scalars(select(Notification.text)).first()
    assert text and "请于" in text and "Please acknowledge" in text


def test_unavailable_people_are_not_called_and_quotas_hold(
    small: Engine, clock: ManualClock
) -> None:
    with transaction(make_sessionmaker(small)) as session:
        someone = session.scalars(
            select(Responder).where(Responder.kind == "micro_grid_member")
        ).first()
        assert someone is not None
        quotas = dict(
            session.execute(
                select(Pairing.community_id, func.sum(Pairing.wartime_quota)).group_by(
                    Pairing.community_id
                )
            ).all()
        )
    away_from_now(small, clock, Responder.id == someone.id)
    m = activate(small, district_commander(small), clock).mobilisation
    with Session(small) as session:
        called = set(
            session.scalars(
                select(Assignment.responder_id).where(Assignment.mobilisation_id == m.id)
            )
        )
        cadres = Counter(
            session.scalars(
                select(Assignment.community_id)
                .join(Responder)
                .where(Assignment.mobilisation_id == m.id, Responder.kind == "sunk_cadre")
            )
        )
    assert someone.id not in called
    assert all(cadres[c] <= quotas[c] for c in cadres)
