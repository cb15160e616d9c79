"""The drill's people and command centres, acting on simulated time through the same domain
services phones and command centres call, in time order.

The simulation follows the mobilisation's event log to learn who was called, moved or
released, as phones learn it from their messages; everything it does is a service call at a
simulated instant, so its events land in the log like a real day's. Every random draw comes
from a generator seeded by (seed, person) or (seed, household): the same seed gives the same
drill whatever order things happen in.

One module because it is one event loop: people, phones and command centres act on a shared
clock and a shared view of the log, which the handlers below read and write."""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mobilize import outbox
from mobilize.auth.actor import Actor, Binding
from mobilize.auth.scope import belongs_in_place
from mobilize.clock import ManualClock
from mobilize.coverage import milestones
from mobilize.coverage import service as coverage
from mobilize.coverage.risk import risk_for
from mobilize.db import transaction
from mobilize.db.one_of import one_of
from mobilize.drill.params import DrillParams
from mobilize.errors import DomainError
from mobilize.mobilisation import assignments, callup, risk_fix, switch
from mobilize.mobilisation import field as on_site
from mobilize.models import (
    HOLDING,
    Assignment,
    Community,
    Event,
    Grid,
    GridState,
    GridStatus,
    Household,
    Mobilisation,
    Responder,
    Role,
    Street,
    Task,
)
from mobilize.notify import Message, Notifier
from mobilize.tasks import dispatch, records

DECLINE_REASON = "家中有事，无法到岗 Cannot come: family matters"
PROGRESS_S = 30.0  # how often a long drill says where it is (wall seconds)
# Manual practice (no system): a street learns of an empty grid at a roll call this often.
ROLL_CALL_EVERY_MIN = 30.0
# Same instant: people first, then the beat, then the command centres, then what is read.
PEOPLE, BEAT, COMMAND, DEADLINE, STAND_DOWN = range(5)


def district_commander(district_id: int) -> Actor:
    """The drill's district command centre: it switches, and stands down."""
    return Actor(
        user_id=None,
        name="区指挥中心（演练）",
        tag="drill:district",
        bindings=(Binding(Role.DISTRICT_COMMANDER, district_id, district_id),),
    )


def _record_batches(
    session: Session,
    *,
    actor: Actor,
    clock: ManualClock,
    batches: list[tuple[int, str, list[int], str]],
) -> None:
    """One phone's sync: a batch of records per task (task, kind, households, result)."""
    for task_id, kind, households, result in batches:
        records.record_households(
            session,
            actor=actor,
            clock=clock,
            task_id=task_id,
            kind=kind,
            entries=[records.HouseholdEntry(h, result) for h in households],
        )


class DrillChannel:
    """Messages reach the simulated phones (counted), never a real one: each one the time
    after its dispatch that the messages before it took to send, at the rate measured."""

    name = "drill"

    def __init__(self, per_second: float) -> None:
        self.sent = 0
        self.per_second = per_second
        self.in_dispatch = 0
        self.reached: dict[str, float] = {}  # phone -> seconds after its dispatch
        self.latest_s = 0.0  # the longest wait of any call so far

    def dispatching(self) -> None:
        """A new dispatch begins: its first message goes out first."""
        self.in_dispatch = 0

    def accepts(self, message: Message) -> bool:
        return True

    def send(self, message: Message, *, key: str) -> None:
        self.sent += 1
        self.in_dispatch += 1
        if message.kind == "assignment":
            after = self.in_dispatch / self.per_second
            self.reached[message.to] = after
            self.latest_s = max(self.latest_s, after)

    def delay_min(self, phone: str | None) -> float:
        """When a person's latest call reached them, in minutes after its dispatch."""
        return self.reached.pop(phone, 0.0) / 60 if phone else 0.0


@dataclass
class Person:
    responder_id: int
    assignment_id: int
    fate: str  # answers | declines | never | no_show
    ack_delay_min: float
    prepare_min: float
    travel_factor: float
    grid_id: int | None = None
    status: str = "assigned"
    version: int = 0  # bumped to cancel what was scheduled for them
    waiting: bool = False  # an answer to their call is scheduled
    visiting: int | None = None  # household being visited now
    checks: list[int] = field(default_factory=list)  # done, not yet synced
    deliveries: list[int] = field(default_factory=list)
    syncing: bool = False
    distance_m: float = 0.0  # of the trip to their grid, as planned
    mode: str = "walk"


@dataclass
class LiveFigures:
    """What the command centre saw at the deadline (the replay must agree)."""

    mobilised_pct: float = 0.0
    mobilised: int = 0
    grids: int = 0
    households_checked: int = 0
    households: int = 0


class Simulation:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        clock: ManualClock,
        mobilisation_id: int,
        params: DrillParams,
        seed: int,
        display_tz: str,
        progress: Callable[[float, int], None] | None = None,
        practice: str = "system",
    ) -> None:
        self.factory = factory
        self.practice = practice  # system (the risk list) | manual (roll calls, no system)
        self.progress = progress  # told (simulated minute, service calls) every PROGRESS_S
        self.clock = clock
        self.mid = mobilisation_id
        self.params = params
        self.seed = seed
        self.display_tz = display_tz
        self.channel = DrillChannel(params.messages_per_second)
        self.notifier = Notifier([self.channel])
        self.people: dict[int, Person] = {}
        self.seq = 0  # the last event of the log the simulation has read
        self.queue: list[tuple[float, int, int, str, int, int, int]] = []
        self.counter = 0
        self.live = LiveFigures()
        self.calls = 0
        self.refusals: dict[str, int] = {}
        with factory() as session:
            mobilisation = session.get(Mobilisation, mobilisation_id)
            assert mobilisation is not None
            self.t0 = mobilisation.t0
            self.deadline_min = (mobilisation.deadline - mobilisation.t0).total_seconds() / 60
            self.district_id = mobilisation.district_id
            self._load_area(session)
        self.commander = district_commander(self.district_id)

    # -- the area, read once ------------------------------------------------------------

    def _load_area(self, session: Session) -> None:
        states = session.execute(
            select(Grid.id, Grid.centre, GridState.street_id)
            .join(GridState, GridState.grid_id == Grid.id)
            .where(GridState.mobilisation_id == self.mid)
        ).all()
        self.centres = {g: (c.x, c.y) for g, c, _ in states}
        self.check_task: dict[int, int] = {}
        self.supply_task: dict[int, tuple[int, int]] = {}
        for task_id, grid_id, kind, tags in session.execute(
            select(Task.id, Task.grid_id, Task.kind, Task.target_tags).where(
                Task.mobilisation_id == self.mid
            )
        ):
            if grid_id is None:
                continue  # a community-wide task: the simulated phones work their own grids
            if kind == "household_check":
                self.check_task[grid_id] = task_id
            elif kind == "supply_delivery":
                self.supply_task[grid_id] = (task_id, tags)
        # People's and households' draws are keyed by their place in the district, not by
        # their ids: another district imported first into the database shifts every id, and
        # must not change the drill.
        self.first_responder = (
            session.scalar(
                select(func.min(Responder.id)).where(Responder.district_id == self.district_id)
            )
            or 1
        )
        self.first_household = (
            session.scalar(
                select(func.min(Household.id)).where(Household.district_id == self.district_id)
            )
            or 1
        )
        self.phone_of: dict[int, str] = dict(
            session.execute(
                select(Responder.id, Responder.phone).where(
                    Responder.district_id == self.district_id
                )
            ).all()
        )
        self.households: dict[int, deque[tuple[int, int]]] = {g: deque() for g in self.centres}
        by_grid: dict[int, list[Any]] = {g: [] for g in self.centres}
        for row in session.execute(
            select(*records.LISTED_HOUSEHOLD).where(
                Household.micro_grid_id.in_(list(self.centres)), Household.current()
            )
        ):
            by_grid[row.micro_grid_id].append(row)
        self.tags: dict[int, int] = {}
        self.grid_of: dict[int, int] = {}
        for gid in sorted(by_grid):
            for row in records.in_visiting_order(by_grid[gid]):
                self.households[gid].append((row.id, row.tags))
                self.tags[row.id] = row.tags
                self.grid_of[row.id] = gid
        self.streets = [
            Actor(
                user_id=None,
                name=f"{name}指挥部（演练）",
                tag=f"drill:street:{code}",
                bindings=(Binding(Role.STREET_COMMANDER, sid, self.district_id),),
            )
            for sid, code, name in session.execute(
                select(Street.id, Street.code, Street.name)
                .where(Street.id.in_({s for _, _, s in states}))
                .order_by(Street.code)
            )
        ]

    # -- time ---------------------------------------------------------------------------

    def _at(self, minute: float, order: int, kind: str, rid: int = 0, arg: int = 0) -> None:
        self.counter += 1
        version = self.people[rid].version if rid in self.people else 0
        heapq.heappush(self.queue, (minute, order, self.counter, kind, rid, version, arg))

    def _minute(self) -> float:
        return (self.clock.now() - self.t0).total_seconds() / 60

    def run(self, batches: list[str]) -> None:
        """From the activation (its messages in `batches`) to the stand-down."""
        p = self.params
        self._deliver(batches)
        self._follow()
        minute = p.tick_min
        while minute <= p.stand_down_min:
            self._at(minute, BEAT, "tick")
            minute += p.tick_min
        # With the system, each street looks at its risk list every few minutes; without it,
        # it learns of an empty grid only at a roll call.
        every, kind = (
            (ROLL_CALL_EVERY_MIN, "roll_call")
            if self.practice == "manual"
            else (p.commander_every_min, "command")
        )
        minute = every
        while minute < p.stand_down_min:
            self._at(minute, COMMAND, kind)
            minute += every
        self._at(self.deadline_min, DEADLINE, "deadline")
        self._at(p.stand_down_min, STAND_DOWN, "stand_down")
        next_report = time.monotonic() + PROGRESS_S
        while self.queue:
            minute, _, _, kind, rid, version, arg = heapq.heappop(self.queue)
            if self.progress is not None and time.monotonic() >= next_report:
                self.progress(minute, self.calls)
                next_report = time.monotonic() + PROGRESS_S
            person = self.people.get(rid)
            if person is not None and version != person.version:
                continue  # cancelled: moved or released since
            self.clock.set(self.t0 + timedelta(minutes=minute))
            getattr(self, f"_on_{kind}")(person, arg)
            if kind == "stand_down":
                break

    # -- the log: who was called, moved, released -----------------------------------------

    def _follow(self) -> None:
        with self.factory() as session:
            rows = session.execute(
                select(Event.mseq, Event.subject_id)
                .where(
                    Event.mobilisation_id == self.mid,
                    Event.mseq > self.seq,
                    Event.kind.like("assignment.%"),
                )
                .order_by(Event.mseq)
            ).all()
            if not rows:
                return
            last = rows[-1][0]
            assert last is not None  # numbered at commit: rows read back always are
            self.seq = last
            touched = sorted({int(r[1]) for r in rows})
            found = session.execute(
                select(
                    Assignment.id,
                    Assignment.responder_id,
                    Assignment.grid_id,
                    Assignment.status,
                    Assignment.distance_m,
                    Assignment.mode,
                ).where(
                    Assignment.mobilisation_id == self.mid,
                    one_of(Assignment.responder_id, touched),
                )
            ).all()
        for row in sorted(found, key=lambda r: r.responder_id):
            self._reconcile(row)

    def _draw(self, rid: int, assignment_id: int) -> Person:
        p = self.params
        rng = np.random.default_rng([self.seed, 1, rid - self.first_responder + 1])
        u = rng.random()
        if u < p.never_answer_share:
            fate = "never"
        elif u < p.never_answer_share + p.decline_share:
            fate = "declines"
        elif u < p.never_answer_share + p.decline_share + p.no_show_share:
            fate = "no_show"
        else:
            fate = "answers"
        return Person(
            responder_id=rid,
            assignment_id=assignment_id,
            fate=fate,
            ack_delay_min=float(p.ack_median_min * math.exp(p.ack_sigma * rng.standard_normal())),
            prepare_min=float(
                p.prepare_median_min * math.exp(p.prepare_sigma * rng.standard_normal())
            ),
            travel_factor=float(math.exp(p.travel_sigma * rng.standard_normal())),
        )

    def _reconcile(self, row: Any) -> None:
        person = self.people.get(row.responder_id)
        if person is None:
            person = self.people[row.responder_id] = self._draw(row.responder_id, row.id)
            person.status = ""
        moved = person.grid_id != row.grid_id
        was = person.status
        person.grid_id, person.status = row.grid_id, row.status
        person.distance_m, person.mode = row.distance_m or 0.0, row.mode or "walk"
        if row.status not in HOLDING:
            self._stop(person)
            person.waiting = False
            return
        if row.status == "assigned":
            reached = self._minute() + self.channel.delay_min(self.phone_of.get(row.responder_id))
            if not person.waiting and person.fate != "never":
                person.waiting = True
                self._at(reached + person.ack_delay_min, PEOPLE, "answer", person.responder_id)
            return
        if moved and was in ("acknowledged", "en_route", "on_site"):
            self._stop(person)  # on their way elsewhere now
            self._at(self._minute() + self._travel(person), PEOPLE, "arrive", person.responder_id)

    def _stop(self, person: Person) -> None:
        """Cancel what was scheduled; a visit under way and unsynced work go back to the
        grid's list for whoever is there."""
        person.version += 1
        person.syncing = False
        if person.visiting is not None or person.checks:
            left = [h for h in [*person.checks, person.visiting] if h is not None]
            for hid in reversed(left):
                tags = self.tags.get(hid, 0)
                self.households[self.grid_of[hid]].appendleft((hid, tags))
        person.visiting, person.checks, person.deliveries = None, [], []

    def _travel(self, person: Person) -> float:
        p = self.params
        km = person.distance_m * p.detour_factor / 1000
        return km / p.speed_kmh(person.mode) * 60 * person.travel_factor

    # -- phones ---------------------------------------------------------------------------

    def _phone(self, person: Person) -> Actor:
        return Actor(
            user_id=None,
            name=f"演练人员 {person.responder_id}",
            tag=f"drill:responder:{person.responder_id}",
            bindings=(Binding(Role.RESPONDER, person.responder_id, self.district_id),),
        )

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        """One service call in its own transaction, as the API makes it; a refusal (someone
        was faster, the person moved) is counted and the drill goes on."""
        self.calls += 1
        try:
            with transaction(self.factory) as session:
                return fn(session, clock=self.clock, **kwargs)
        except DomainError as exc:
            self.refusals[type(exc).__name__] = self.refusals.get(type(exc).__name__, 0) + 1
            return None

    def _on_answer(self, person: Person, _: int) -> None:
        person.waiting = False
        if person.status != "assigned":
            return
        if person.fate == "declines":
            outcome = self._call(
                assignments.decline,
                actor=self._phone(person),
                assignment_id=person.assignment_id,
                reason=DECLINE_REASON,
                display_tz=self.display_tz,
            )
            if outcome is not None:
                self._deliver(outcome.batches)
            self._follow()
            return
        travel = self._travel(person)
        outcome = self._call(
            assignments.acknowledge,
            actor=self._phone(person),
            assignment_id=person.assignment_id,
            eta_minutes=math.ceil(person.prepare_min + travel),
        )
        if outcome is None:
            self._follow()
            return
        person.status = "acknowledged"
        if person.fate != "no_show":
            self._at(
                self._minute() + person.prepare_min + travel, PEOPLE, "arrive", person.responder_id
            )

    def _on_arrive(self, person: Person, _: int) -> None:
        assert person.grid_id is not None
        lon, lat = self.centres[person.grid_id]
        outcome = self._call(
            on_site.check_in,
            actor=self._phone(person),
            assignment_id=person.assignment_id,
            lon=lon,
            lat=lat,
        )
        if outcome is None:
            self._follow()
            return
        person.status = "on_site"
        self._visit_next(person)

    def _visit_next(self, person: Person) -> None:
        assert person.grid_id is not None
        waiting = self.households.get(person.grid_id)
        if not waiting:
            return
        hid, tags = waiting.popleft()
        p = self.params
        rng = np.random.default_rng([self.seed, 2, hid - self.first_household + 1])
        minutes = p.check_tagged_min if tags & dispatch.SUPPLY_TAGS else p.check_min
        supply = self.supply_task.get(person.grid_id)
        if supply is not None and tags & supply[1]:
            minutes += p.deliver_min
        minutes *= math.exp(p.work_sigma * rng.standard_normal())
        person.visiting = hid
        self._at(self._minute() + minutes, PEOPLE, "visited", person.responder_id, hid)

    def _on_visited(self, person: Person, hid: int) -> None:
        assert person.grid_id is not None
        person.visiting = None
        person.checks.append(hid)
        supply = self.supply_task.get(person.grid_id)
        if supply is not None and self.tags.get(hid, 0) & supply[1]:
            person.deliveries.append(hid)
        if not person.syncing:
            person.syncing = True
            self._at(
                self._minute() + self.params.sync_every_min, PEOPLE, "sync", person.responder_id
            )
        self._visit_next(person)

    def _on_sync(self, person: Person, _: int) -> None:
        person.syncing = False
        self._sync(person)
        if person.visiting is not None:
            person.syncing = True
            self._at(
                self._minute() + self.params.sync_every_min, PEOPLE, "sync", person.responder_id
            )

    def _sync(self, person: Person) -> None:
        """The phone sends its checks and deliveries since the last sync: one request, so one
        transaction, as the phone page's queue sends them when it gets through."""
        if not person.checks or person.grid_id is None:
            return
        batches = [(self.check_task[person.grid_id], "check", person.checks, "ok")]
        if person.deliveries:
            task_id = self.supply_task[person.grid_id][0]
            batches.append((task_id, "delivery", person.deliveries, "delivered"))
        self._call(_record_batches, actor=self._phone(person), batches=batches)
        person.checks, person.deliveries = [], []

    # -- the command side -----------------------------------------------------------------

    def _deliver(self, batches: list[str]) -> None:
        if not batches:
            return
        self.channel.dispatching()
        while outbox.deliver(
            self.factory, notifier=self.notifier, clock=self.clock, batches=batches
        ):
            pass

    def _on_tick(self, _: Person | None, __: int) -> None:
        with transaction(self.factory) as session:
            batches = milestones.run_due(session, clock=self.clock, display_tz=self.display_tz)
        self._deliver(batches)

    def _on_command(self, _: Person | None, __: int) -> None:
        """Each street command centre accepts the suggested fixes for its at-risk grids."""
        for street in self.streets:
            with self.factory() as session:
                _fixes, risks = risk_for(
                    session, actor=street, mobilisation_id=self.mid, now=self.clock.now()
                )
            self._send(
                street,
                [
                    (r.grid_id, r.suggestion.responder_id, r.suggestion.from_grid_id)
                    for r in risks
                    if r.suggestion is not None
                ],
            )

    def _on_roll_call(self, _: Person | None, __: int) -> None:
        """Manual practice: each street counts who stands in its grids, and sends to each
        grid nobody stands in the nearest free person of its own it knows of."""
        for street in self.streets:
            with self.factory() as session:
                empty, sends = self._roll_call(session, street)
            self._send(street, [(grid_id, rid, None) for grid_id, rid in sends])
            if empty and not sends:
                self._follow()

    def _send(self, street: Actor, sends: list[tuple[int, int, int | None]]) -> None:
        """A street sends these people (grid, responder, the grid they hold now), each a
        risk fix in its own transaction, then the simulation reads who moved."""
        for grid_id, responder_id, from_grid_id in sends:
            outcome = self._call(
                risk_fix.send_to_grid,
                actor=street,
                mobilisation_id=self.mid,
                grid_id=grid_id,
                responder_id=responder_id,
                from_grid_id=from_grid_id,
                display_tz=self.display_tz,
            )
            if outcome is not None:
                self._deliver(outcome.batches)
        if sends:
            self._follow()

    def _roll_call(
        self, session: Session, street: Actor
    ) -> tuple[list[int], list[tuple[int, int]]]:
        street_id = street.bindings[0].scope_id
        empty = list(
            session.scalars(
                select(GridState.grid_id)
                .where(
                    GridState.mobilisation_id == self.mid,
                    GridState.street_id == street_id,
                    GridState.status.not_in([GridStatus.MOBILISED.value, GridStatus.CHECKED.value]),
                )
                .order_by(GridState.grid_id)
            )
        )
        if not empty:
            return [], []
        metric = callup.metric_for(session, self.district_id)
        communities = list(
            session.scalars(select(Community.id).where(Community.street_id == street_id))
        )
        info = callup.load_grids(session, communities, metric)
        called = select(Assignment.responder_id).where(Assignment.mobilisation_id == self.mid)
        free = callup.candidates(
            session,
            who=(Responder.district_id == self.district_id)
            & belongs_in_place(street)
            & Responder.id.not_in(called),
            metric=metric,
            info=info,
            now=self.clock.now(),
        )
        sends: list[tuple[int, int]] = []
        for grid_id in empty:
            if not free or grid_id not in info:
                continue
            g = info[grid_id]
            nearest = min(free, key=lambda c: (math.hypot(c.x - g.x, c.y - g.y), c.id))
            free.remove(nearest)
            sends.append((grid_id, nearest.id))
        return empty, sends

    def _on_deadline(self, _: Person | None, __: int) -> None:
        with self.factory() as session:
            mobilisation = session.get(Mobilisation, self.mid)
            assert mobilisation is not None
            now = coverage.coverage(session, mobilisation=mobilisation, now=self.clock.now())
        self.live = LiveFigures(
            mobilised_pct=now.mobilised_pct,
            mobilised=now.by_status.get("mobilised", 0) + now.by_status.get("checked", 0),
            grids=now.grids,
            households_checked=now.households_checked,
            households=now.households,
        )

    def _on_stand_down(self, _: Person | None, __: int) -> None:
        for person in sorted(self.people.values(), key=lambda p: p.responder_id):
            if person.status in HOLDING:
                self._sync(person)
        outcome = self._call(switch.stand_down, actor=self.commander, mobilisation_id=self.mid)
        if outcome is not None:
            self._deliver(outcome.batches)
