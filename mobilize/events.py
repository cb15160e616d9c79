"""Appending to the event log, in the caller's transaction: no event, no change.

A mobilisation's events are numbered at commit (`mseq`). They wait in the session until then;
the `before_commit` hook flushes everything else first, then locks the counters of the
mobilisations it touched (in id order), numbers the events and inserts them. The counter is
thus the last lock a transaction takes and is held only until it commits, so transactions
commit in `mseq` order: a reader following `mseq > n` cannot miss an event that was numbered
lower and committed later. Locking the counter when the event is recorded instead would
deadlock (a decline holds its assignment, then updates others a concurrent acknowledge holds).

Times follow the sequence too: an event's time is raised, if need be, to its predecessor's,
so "the events up to time t" is always a prefix of the sequence (what replay folds)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, case, select, text, update
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor
from mobilize.clock import Clock
from mobilize.db import prepared
from mobilize.db.bulk import insert_if_absent, insert_rows, to_json
from mobilize.db.engine import is_postgres
from mobilize.db.prepared import Prepared
from mobilize.db.session import AnyRow, core_rows
from mobilize.live import touched
from mobilize.models import Event, EventCounter, table_of

_EVENTS = table_of(Event)
PENDING = "mobilize.pending_events"  # session.info key: mobilisation id -> rows to number
# On PostgreSQL a commit's events for one mobilisation go in one statement up to this many
# (a phone's write: the counter held for the least time); more (an activation's 30k) go by
# COPY after the counter moves on, which the server takes in half the time (bench/assign_bench).
ONE_STATEMENT_UP_TO = 1000


def _row(
    at: datetime,
    actor: str,
    kind: str,
    subject_type: str,
    subject_id: str,
    payload: dict[str, Any] | None,
    mobilisation_id: int | None,
) -> dict[str, Any]:
    return {
        "occurred_at": at,
        "actor": actor,
        "kind": kind,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "payload": payload or {},
        "mobilisation_id": mobilisation_id,
    }


def _pend(session: Session, mobilisation_id: int, rows: list[dict[str, Any]]) -> None:
    session.info.setdefault(PENDING, {}).setdefault(mobilisation_id, []).extend(rows)
    touched(session, mobilisation_id)


def record_event(
    session: Session,
    *,
    clock: Clock,
    actor: str,
    kind: str,
    subject_type: str,
    subject_id: str,
    payload: dict[str, Any] | None = None,
    mobilisation_id: int | None = None,
) -> Event | None:
    """Append one event. A mobilisation's event is written at commit (None is returned);
    any other is flushed now and returned, its `seq` known."""
    row = _row(clock.now(), actor, kind, subject_type, subject_id, payload, mobilisation_id)
    if mobilisation_id is not None:
        _pend(session, mobilisation_id, [row])
        return None
    event = Event(**row)
    session.add(event)
    session.flush()
    return event


def record_events(
    session: Session,
    *,
    clock: Clock,
    actor: str,
    events: list[tuple[str, str, str, dict[str, Any]]],
    mobilisation_id: int | None = None,
) -> None:
    """Append many events at once (kind, subject type, subject id, payload)."""
    if not events:
        return
    now = clock.now()
    rows = [_row(now, actor, k, t, i, p, mobilisation_id) for k, t, i, p in events]
    if mobilisation_id is not None:
        _pend(session, mobilisation_id, rows)
    else:
        insert_rows(session, table_of(Event), rows)


def write_pending(session: Session) -> None:
    """Number and insert the session's pending events (the before_commit hook)."""
    waiting: dict[int, list[dict[str, Any]]] = session.info.pop(PENDING, None) or {}
    if not waiting:
        return
    session.flush()  # every other row lock first: the counter must be the last one taken
    postgres = is_postgres(session.get_bind())
    rows: list[dict[str, Any]] = []
    for mobilisation_id in sorted(waiting):
        batch = waiting[mobilisation_id]
        if postgres and len(batch) <= ONE_STATEMENT_UP_TO:
            # One statement (migration 0011), so the counter is held for two round trips
            # (it and COMMIT), not four: every write of the mobilisation waits behind it.
            # The batch as one JSON document: the driver's array dumping, element by element
            # in Python, was slower than the server's parsing.
            document = [
                [
                    row["occurred_at"].isoformat(),
                    row["actor"],
                    row["kind"],
                    row["subject_type"],
                    row["subject_id"],
                    row["payload"],
                ]
                for row in batch
            ]
            prepared.run(session, _APPEND, {"m": mobilisation_id, "rows": to_json(document)})
            continue
        rows += _numbered(session, mobilisation_id, batch)
    insert_rows(session, table_of(Event), rows)


def _numbered(
    session: Session, mobilisation_id: int, batch: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The batch numbered after the mobilisation's last event (its counter moved on and
    held), each time raised, if need be, to its predecessor's."""
    numbered = []
    times = {row["occurred_at"] for row in batch}
    if len(times) == 1:
        # The usual case (one clock reading per write): one statement moves the counter
        # and its time, and every event's time is the counter's new one.
        (at,) = times
        last_mseq, last_at = _advance(session, mobilisation_id, batch, _ADVANCE_TO, at)
        mseq = last_mseq - len(batch)
        for row in batch:
            mseq += 1
            numbered.append({**row, "occurred_at": last_at, "mseq": mseq})
        return numbered
    last_mseq, last_at = _advance(session, mobilisation_id, batch, _ADVANCE, None)
    mseq = last_mseq - len(batch)
    for row in batch:
        mseq += 1
        last_at = max(last_at, row["occurred_at"])
        numbered.append({**row, "occurred_at": last_at, "mseq": mseq})
    prepared.run(session, _SET_LAST_AT, {"m": mobilisation_id, "at": last_at})
    return numbered


_APPEND = Prepared(
    text(
        "SELECT append_events(:m, array_agg((e->>0)::timestamptz ORDER BY n), "
        "array_agg(e->>1 ORDER BY n), array_agg(e->>2 ORDER BY n), array_agg(e->>3 ORDER BY n), "
        "array_agg(e->>4 ORDER BY n), array_agg((e->5)::text ORDER BY n)) "
        "FROM json_array_elements(CAST(:rows AS json)) WITH ORDINALITY AS x(e, n)"
    )
)
# Built once: every commit of a wartime write runs these (building them cost more than running).
# On the table, not the mapped class: an ORM update first looks for counter objects in the
# session to bring up to date (there are none), which took most of the statement's time.
_COUNTER = table_of(EventCounter).c
_ADVANCE = Prepared(
    update(table_of(EventCounter))
    .where(_COUNTER.mobilisation_id == bindparam("m"))
    .values(last_mseq=_COUNTER.last_mseq + bindparam("n"))
    .returning(_COUNTER.last_mseq, _COUNTER.last_at)
)
_SET_LAST_AT = Prepared(
    update(table_of(EventCounter))
    .where(_COUNTER.mobilisation_id == bindparam("m"))
    .values(last_at=bindparam("at"))
)
_AT = bindparam("at", type_=_COUNTER.last_at.type)
_ADVANCE_TO = Prepared(
    update(table_of(EventCounter))
    .where(_COUNTER.mobilisation_id == bindparam("m"))
    .values(
        last_mseq=_COUNTER.last_mseq + bindparam("n"),
        last_at=case((_COUNTER.last_at > _AT, _COUNTER.last_at), else_=_AT),
    )
    .returning(_COUNTER.last_mseq, _COUNTER.last_at)
)


def _advance(
    session: Session,
    mobilisation_id: int,
    batch: list[dict[str, Any]],
    statement: Prepared,
    at: datetime | None,
) -> tuple[int, datetime]:
    """Move the counter on by the batch (locking its row) with `statement` (`_ADVANCE`, or
    `_ADVANCE_TO` time `at`): its new last mseq, and its time (before the batch for
    `_ADVANCE`, after it for `_ADVANCE_TO`). The row is made by the mobilisation's first
    commit."""
    advance = {"m": mobilisation_id, "n": len(batch), "at": at}
    found = prepared.rows(session, statement, advance)
    if not found:
        insert_if_absent(
            session,
            table_of(EventCounter),
            {
                "mobilisation_id": mobilisation_id,
                "last_mseq": 0,
                "last_at": batch[0]["occurred_at"],
            },
        )
        found = prepared.rows(session, statement, advance)
    return found[0][0], found[0][1]


@orm_event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_pending(session)


@orm_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)


def read_log(session: Session, mobilisation_id: int, *where: Any) -> Iterator[AnyRow]:
    """A mobilisation's events matching `where`, in sequence, streamed: rows of (mseq,
    occurred_at, actor, kind, subject_type, subject_id, payload), what replay, the report and
    the export read."""
    return iter(
        session.execute(
            select(
                Event.mseq,
                Event.occurred_at,
                Event.actor,
                Event.kind,
                Event.subject_type,
                Event.subject_id,
                Event.payload,
            )
            .where(Event.mobilisation_id == mobilisation_id, *where)
            .order_by(Event.mseq)
            .execution_options(yield_per=5000)
        )
    )


def visible_events(
    session: Session,
    *,
    actor: Actor,
    mobilisation_id: int,
    after: int,
    limit: int = 500,
    kinds: list[str] | None = None,
) -> tuple[list[Any], int, bool]:
    """A mobilisation's events after `mseq` `after` (of these kinds, if given) that the actor
    may see; the last `mseq` read, to continue from even when every event read was out of
    their sight; and whether more follow.

    District-wide roles see them all; area roles the events about their grids and
    communities, and those about the mobilisation itself with only what is shared by all of
    it (title, kind, times, rule): its figures, its communities, the streets at risk and the
    tasks dispatched elsewhere are the district's, not theirs."""
    from mobilize.auth.scope import district_wide, visible, visible_mobilisation
    from mobilize.models import Community, Grid

    visible_mobilisation(session, actor, mobilisation_id)
    # Rows, not objects: every live feed re-reads the new events each time the log grows.
    t = _EVENTS
    stmt = select(
        t.c.mseq, t.c.kind, t.c.occurred_at, t.c.actor, t.c.subject_type, t.c.subject_id,
        t.c.payload,
    ).where(t.c.mobilisation_id == mobilisation_id, t.c.mseq > after)  # fmt: skip
    if kinds:
        stmt = stmt.where(t.c.kind.in_(kinds))
    rows = list(core_rows(session, stmt.order_by(t.c.mseq).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1].mseq if rows else after
    assert last is not None
    if district_wide(actor):
        return rows, last, more
    grids = set(session.scalars(select(Grid.id).where(visible(actor, Grid))))
    communities = set(session.scalars(select(Community.id).where(visible(actor, Community))))

    def mine(e: AnyRow) -> bool:
        p = e.payload or {}
        return (
            e.subject_type == "mobilisation"
            or (e.subject_type == "grid" and e.subject_id.isdigit() and int(e.subject_id) in grids)
            or p.get("grid") in grids
            or p.get("from") in grids
            or p.get("community") in communities
        )

    seen = [_shared(e) if e.subject_type == "mobilisation" else e for e in rows if mine(e)]
    dispatched = [t for e in seen if e.kind == "tasks.dispatched" for t in e.payload["tasks"]]
    if dispatched:
        from mobilize.models import Task

        mine_tasks = set(
            session.scalars(select(Task.id).where(Task.id.in_(dispatched), visible(actor, Task)))
        )
        seen = [_tasks_within(e, mine_tasks) for e in seen]
        seen = [e for e in seen if e.kind != "tasks.dispatched" or e.payload["tasks"]]
    return seen, last, more


# What a mobilisation's own events say to everyone who may see the mobilisation.
SHARED_KEYS = frozenset(
    {"kind", "title", "scope", "t0", "deadline", "rule", "due_at", "priority", "tasks"}
)


def shared_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    """What a mobilisation's own event says to someone who sees only part of it."""
    return {k: v for k, v in (payload or {}).items() if k in SHARED_KEYS}


def _shared(e: Any) -> Any:
    return _with_payload(e, shared_payload(e.payload))


def _tasks_within(e: Any, tasks: set[int]) -> Any:
    if e.kind != "tasks.dispatched":
        return e
    return _with_payload(e, {**e.payload, "tasks": [t for t in e.payload["tasks"] if t in tasks]})


class _Event(NamedTuple):
    mseq: int | None
    kind: str
    occurred_at: datetime
    actor: str
    subject_type: str
    subject_id: str
    payload: dict[str, Any]


def _with_payload(e: Any, payload: dict[str, Any]) -> _Event:
    return _Event(e.mseq, e.kind, e.occurred_at, e.actor, e.subject_type, e.subject_id, payload)
