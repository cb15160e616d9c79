"""The household records phones send for check and supply tasks: the task's households in
visiting order, and each batch checked whole before any row is written."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from mobilize import idempotency, validation
from mobilize.auth.actor import Actor
from mobilize.clock import Clock
from mobilize.coverage import service as coverage
from mobilize.db import prepared
from mobilize.db.bulk import insert_many_if_absent
from mobilize.db.one_of import one_of
from mobilize.db.prepared import Prepared
from mobilize.db.session import AnyRow, core_rows
from mobilize.errors import DomainError, InvalidInput, NotFound
from mobilize.events import record_event
from mobilize.mobilisation.locks import lock_communities
from mobilize.models import (
    CheckResult,
    Grid,
    Household,
    HouseholdRecord,
    Mobilisation,
    Responder,
    Task,
    TaskKind,
    TaskStatus,
    table_of,
)
from mobilize.tasks.dispatch import PRIORITY_TAGS
from mobilize.tasks.lifecycle import TaskTransitionError, doer_of_task, move_task


class AlreadyRecorded(DomainError):
    code = "ALREADY_RECORDED"

    def __init__(self, by: str, at: datetime, result: str) -> None:
        super().__init__(f"该户已由{by}登记 Already recorded by {by} at {at:%H:%M} ({result})")
        self.by, self.at, self.result = by, at, result


# What a household list shows. The geometry is left out: a list of fifty is read on every
# phone's screen, and only a map asks a household's `location` (the API loads it apart).
LISTED_HOUSEHOLD = (Household.id, Household.micro_grid_id, Household.code, Household.size,
                    Household.tags, Household.building_id, Household.building_unit,
                    Household.door, Household.address)  # fmt: skip


def ordered_households(session: Session, task: Task) -> list[AnyRow]:
    """The task's households (`LISTED_HOUSEHOLD`), the vulnerable first (七彩图), then by code."""
    stmt = select(*LISTED_HOUSEHOLD).where(Household.current())
    if task.grid_id is not None:
        stmt = stmt.where(Household.micro_grid_id == task.grid_id)
    else:
        stmt = stmt.join(Grid, Grid.id == Household.micro_grid_id).where(
            Grid.community_id == task.community_id
        )
    if task.target_tags:
        stmt = stmt.where(Household.tags.op("&")(task.target_tags) != 0)
    return in_visiting_order(core_rows(session, stmt))


H = TypeVar("H")  # a listed row (`LISTED_HOUSEHOLD`) or a Household


def in_visiting_order(households: Iterable[H]) -> list[H]:
    """Building by building, the one with the most urgent household first (七彩图); within a
    building unit by unit, door by door (2 before 10); a household with no building on its
    own by its own urgency."""
    rows: list[Any] = list(households)  # any object with the listed columns
    first: dict[int, tuple[int, str]] = {}
    for h in rows:
        if h.building_id is not None:
            rank = visiting_rank(h.tags, h.code)
            first[h.building_id] = min(first.get(h.building_id, rank), rank)

    def key(h: Any) -> tuple[Any, ...]:
        if h.building_id is None:
            return (visiting_rank(h.tags, h.code),)
        return (first[h.building_id], _natural(h.building_unit), _natural(h.door), h.code)

    return sorted(rows, key=key)


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    """Numbers in a unit or door compared as numbers: 2单元 before 10单元, 502 before 1101."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.findall(r"\d+|\D+", text)
    )


def household_records(
    session: Session, mobilisation_id: int, household_ids: list[int]
) -> dict[tuple[int, str], AnyRow]:
    """What was recorded at these households in the mobilisation, by (household, kind)."""
    r = HouseholdRecord
    rows = core_rows(
        session,
        select(r.id, r.household_id, r.kind, r.result, r.note, r.recorded_at).where(
            r.mobilisation_id == mobilisation_id, r.household_id.in_(household_ids)
        ),
    )
    return {(row.household_id, row.kind): row for row in rows}


def visiting_rank(tags: int, code: str) -> tuple[int, str]:
    """Where a household comes in the visiting order: by its most urgent tag, then code."""
    for i, tag in enumerate(PRIORITY_TAGS):
        if tags & tag.bit:
            return i, code
    return len(PRIORITY_TAGS), code


def _in_task(session: Session, task: _TaskToRecord, household: Any) -> bool:
    """Whether a household is one of the task's (its area, its tags), without listing them."""
    if task.target_tags and not household.tags & task.target_tags:
        return False
    if task.grid_id is not None:
        return household.micro_grid_id == task.grid_id
    community = session.scalar(select(Grid.community_id).where(Grid.id == household.micro_grid_id))
    return community == task.community_id


FieldName = Callable[[int, str], str]  # how an error names an entry's field


@dataclass(frozen=True)
class HouseholdEntry:
    """One household's result in a batch a phone sends (its checks since it last synced)."""

    household_id: int
    result: str
    note: str | None = None


@dataclass
class RecordedBatch:
    records: list[HouseholdRecord]  # recorded now (or earlier under the same client id)
    taken: dict[int, AlreadyRecorded]  # household -> who recorded it first, not recorded again


def record_household(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    task_id: int,
    household_id: int,
    kind: str,
    result: str,
    note: str | None = None,
    client_mutation_id: str | None = None,
) -> HouseholdRecord:
    """One household checked (ok, needs_help, absent, refused) or supplied (delivered,
    absent, refused). Two phones racing on one household: one record, the other is told who
    was first."""
    batch = _record(
        session,
        actor=actor,
        clock=clock,
        task_id=task_id,
        kind=kind,
        entries=[HouseholdEntry(household_id, result, note)],
        key=client_mutation_id,
        operation=f"household.{kind}",
        request={"task": task_id, "household": household_id, "result": result, "note": note},
        field=lambda _i, name: name,
    )
    if household_id in batch.taken:
        raise batch.taken[household_id]
    return batch.records[0]


def record_households(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    task_id: int,
    kind: str,
    entries: list[HouseholdEntry],
    client_mutation_id: str | None = None,
) -> RecordedBatch:
    """A phone's checks or deliveries since it last synced, in one transaction: all land or,
    when one is invalid (named by its index), none. Households another phone recorded first
    are left as they are and reported in `taken`."""
    if not 1 <= len(entries) <= MAX_BATCH:
        raise InvalidInput("entries", f"between 1 and {MAX_BATCH} households")
    return _record(
        session,
        actor=actor,
        clock=clock,
        task_id=task_id,
        kind=kind,
        entries=entries,
        key=client_mutation_id,
        operation=f"households.{kind}",
        request={
            "task": task_id,
            "entries": [[e.household_id, e.result, e.note] for e in entries],
        },
        field=lambda i, name: f"entries[{i}].{name}",
    )


MAX_BATCH = 500


# Core rows on the session's connection: the ORM's result handling cost more than the query.
_H = table_of(Household).c


_HOUSEHOLDS = Prepared(
    select(_H.id, _H.micro_grid_id, _H.tags, _H.code).where(one_of(_H.id, "ids"))
)


@dataclass(frozen=True)
class _TaskToRecord:
    """What a record needs of its task: its kind and status, and the area and tags that say
    which households are its."""

    id: int
    mobilisation_id: int
    kind: str
    grid_id: int | None
    community_id: int
    target_tags: int
    status: str


# Columns, not objects: loading the task and its mobilisation as objects cost a third of a sync.
_TASK_AND_MOBILISATION = Prepared(
    select(
        Task.id,
        Task.mobilisation_id,
        Task.kind,
        Task.grid_id,
        Task.community_id,
        Task.target_tags,
        Task.status,
        Mobilisation.t0,
        Mobilisation.rule,
        doer_of_task("mine").label("doer"),
    )
    .join(Mobilisation, Mobilisation.id == Task.mobilisation_id)
    .where(Task.id == bindparam("task"))
)


def _record(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    task_id: int,
    kind: str,
    entries: list[HouseholdEntry],
    key: str | None,
    operation: str,
    request: dict[str, Any],
    field: FieldName,
) -> RecordedBatch:
    notes = _checked_notes(entries, kind, field)
    earlier = idempotency.claim(
        session, actor=actor.label, key=key, operation=operation, clock=clock, request=request
    )
    if earlier is not None:
        ids = earlier.get("records", [earlier.get("record")])
        found = session.scalars(select(HouseholdRecord).where(HouseholdRecord.id.in_(ids))).all()
        return RecordedBatch(sorted(found, key=lambda r: ids.index(r.id)), {})
    task, mobilisation, responder_id = _task_to_record_on(session, actor, task_id, kind)
    # Only what a record needs: not the geometry, whose parsing took a quarter of a sync.
    households = {
        h.id: h
        for h in prepared.rows(session, _HOUSEHOLDS, {"ids": [e.household_id for e in entries]})
    }
    for i, entry in enumerate(entries):
        household = households.get(entry.household_id)
        if household is None or not _in_task(session, task, household):
            raise InvalidInput(field(i, "household"), "not one of this task's households")
    _start(session, task, clock)
    records = _write(session, actor, clock, task, responder_id, kind, entries, notes, households)
    recorded = {r.household_id for r in records}
    taken = _first_records(
        session,
        task.mobilisation_id,
        kind,
        [e.household_id for e in entries if e.household_id not in recorded],
    )
    if kind == "check" and records:
        added = Counter(households[r.household_id].micro_grid_id for r in records)
        coverage.add_checks(session, mobilisation=mobilisation, checks=added, clock=clock)
    if len(entries) == 1 and records:
        result: dict[str, Any] = {"record": records[0].id}
    else:
        result = {"records": [r.id for r in records]}
    idempotency.remember(session, actor=actor.label, key=key, result=result)
    return RecordedBatch(records, taken)


def _checked_notes(entries: list[HouseholdEntry], kind: str, field: FieldName) -> list[str | None]:
    """Every entry valid, before anything is claimed or written: a batch lands whole or not
    at all, and the error names the entry."""
    allowed = (
        {r.value for r in CheckResult} if kind == "check" else {"delivered", "absent", "refused"}
    )
    notes: list[str | None] = []
    seen: set[int] = set()
    for i, entry in enumerate(entries):
        if entry.result not in allowed:
            raise InvalidInput(
                field(i, "result"), f"{entry.result!r} is not one of {', '.join(sorted(allowed))}"
            )
        if entry.household_id in seen:
            raise InvalidInput(field(i, "household"), "the same household twice in one batch")
        seen.add(entry.household_id)
        notes.append(
            validation.text(field(i, "note"), entry.note, max_len=1000) if entry.note else None
        )
    return notes


def _task_to_record_on(
    session: Session, actor: Actor, task_id: int, kind: str
) -> tuple[_TaskToRecord, coverage.MobilisationFacts, int]:
    """The task, its mobilisation and which of the caller's people does it, in one statement
    by primary key (a phone's sync is most of a drill's work). A task that is not theirs
    answers as if it did not exist, as `get_task` would, without its scope query."""
    mine = list(actor.responder_ids)
    params = {"task": task_id, "mine": mine}
    found = prepared.rows(session, _TASK_AND_MOBILISATION, params) if mine else []
    if not found:
        raise NotFound(f"没有这个任务 No task {task_id}")
    # Shared: households are most of a drill's writes, and a record touches only its task and
    # its grid's state (in that order), so records in one community need not queue.
    if lock_communities(session, found[0].mobilisation_id, [found[0].community_id], shared=True):
        # Who holds the grid may have changed while the lock was awaited: read again.
        found = prepared.rows(session, _TASK_AND_MOBILISATION, params)
    (row,) = found
    if row.doer is None:
        raise NotFound(f"没有这个任务 No task {task_id}")
    task = _TaskToRecord(*row[:7])
    mobilisation = coverage.MobilisationFacts(task.mobilisation_id, row.t0, row.rule)
    responder_id = int(row.doer)
    expected = TaskKind.HOUSEHOLD_CHECK if kind == "check" else TaskKind.SUPPLY_DELIVERY
    if task.kind != expected.value:
        raise InvalidInput("task", f"this is a {task.kind} task, not a {expected.value} task")
    return task, mobilisation, responder_id


def _start(session: Session, task: _TaskToRecord, clock: Clock) -> None:
    """The first record starts the task; a record on a finished task is refused."""
    if TaskStatus(task.status) in (TaskStatus.ASSIGNED, TaskStatus.ACCEPTED):
        started = session.get_one(Task, task.id)
        try:
            move_task(session, started, TaskStatus.IN_PROGRESS, clock.now())
        except TaskTransitionError:
            # Another phone's first record started it meanwhile: work on.
            if started.status != TaskStatus.IN_PROGRESS.value:
                raise
    elif TaskStatus(task.status) is not TaskStatus.IN_PROGRESS:
        raise TaskTransitionError(task.status, "in_progress")


def _write(
    session: Session,
    actor: Actor,
    clock: Clock,
    task: _TaskToRecord,
    responder_id: int,
    kind: str,
    entries: list[HouseholdEntry],
    notes: list[str | None],
    households: dict[int, Any],
) -> list[HouseholdRecord]:
    """The records no other phone wrote first (one per household and kind), an event each."""
    now = clock.now()
    rows: list[dict[str, Any]] = [
        {
            "mobilisation_id": task.mobilisation_id,
            "task_id": task.id,
            "household_id": entry.household_id,
            "responder_id": responder_id,
            "kind": kind,
            "result": entry.result,
            "note": note,
            "recorded_at": now,
        }
        for entry, note in zip(entries, notes, strict=True)
    ]
    inserted = {
        household_id: record_id
        for record_id, household_id in insert_many_if_absent(
            session, table_of(HouseholdRecord), rows, ("id", "household_id")
        )
    }
    records = []
    for row in rows:
        record_id = inserted.get(row["household_id"])
        if record_id is None:
            continue
        records.append(HouseholdRecord(id=record_id, **row))
        household = households[row["household_id"]]
        record_event(
            session,
            clock=clock,
            actor=actor.label,
            kind="household.checked" if kind == "check" else "household.supplied",
            subject_type="household",
            subject_id=household.code,
            mobilisation_id=task.mobilisation_id,
            payload={
                "task": task.id,
                "grid": household.micro_grid_id,
                "result": row["result"],
                "responder": responder_id,
                "tags": household.tags,
            },
        )
    return records


def _first_records(
    session: Session, mobilisation_id: int, kind: str, households: list[int]
) -> dict[int, AlreadyRecorded]:
    """Who recorded these households first, for the phones that came second."""
    if not households:
        return {}
    return {
        first.household_id: AlreadyRecorded(name, first.recorded_at, first.result)
        for first, name in session.execute(
            select(HouseholdRecord, Responder.name)
            .join(Responder, Responder.id == HouseholdRecord.responder_id)
            .where(
                HouseholdRecord.mobilisation_id == mobilisation_id,
                HouseholdRecord.household_id.in_(households),
                HouseholdRecord.kind == kind,
            )
        )
    }
