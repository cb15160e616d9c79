"""Reading the district: pages of each kind and batched lookups for DataLoaders.

Every function takes a session and returns ORM rows; one call is one SQL statement (or two
for a page with its total), whatever the number of keys."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from mobilize.auth.actor import Actor
from mobilize.auth.scope import visible
from mobilize.models import (
    Activity,
    Assignment,
    Building,
    Commitment,
    Community,
    District,
    Enrolment,
    Grid,
    Household,
    HouseholdRecord,
    Leave,
    Mobilisation,
    Pairing,
    PartyOrganisation,
    ProblemReport,
    Responder,
    Street,
    Task,
    Team,
    Unit,
)
from mobilize.models.base import Retirable

T = TypeVar("T")
MAX_PAGE = 500

MODELS: dict[str, Any] = {
    "District": District,
    "Street": Street,
    "Community": Community,
    "Grid": Grid,
    "Household": Household,
    "Building": Building,
    "Leave": Leave,
    "Activity": Activity,
    "Enrolment": Enrolment,
    "Commitment": Commitment,
    "Unit": Unit,
    "Pairing": Pairing,
    "Team": Team,
    "Responder": Responder,
    "Mobilisation": Mobilisation,
    "Assignment": Assignment,
    "PartyOrganisation": PartyOrganisation,
    "Task": Task,
    "HouseholdRecord": HouseholdRecord,
    "ProblemReport": ProblemReport,
}


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    has_next: bool
    has_previous: bool
    total: int


def page(
    session: Session,
    model: Any,
    *,
    actor: Actor,
    where: Sequence[ColumnElement[bool]] = (),
    first: int = 50,
    after: int | None = None,
) -> Page[Any]:
    """Rows of `model` the actor may see matching `where`, by id, `first` after id `after`;
    of the district as it is today (retired rows stay reachable by id, for history)."""
    first = max(0, min(first, MAX_PAGE))
    base: Select[Any] = select(model).where(visible(actor, model), *_today(model), *where)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    stmt = base.order_by(model.id).limit(first + 1)
    if after is not None:
        stmt = stmt.where(model.id > after)
    rows = list(session.scalars(stmt))
    return Page(
        rows=rows[:first], has_next=len(rows) > first, has_previous=after is not None, total=total
    )


def by_ids(session: Session, model: Any, ids: Sequence[int], *, actor: Actor) -> list[Any | None]:
    """Rows for `ids` in the same order; None where a row does not exist or is out of scope,
    which look the same to the caller."""
    stmt = select(model).where(model.id.in_(set(ids)), visible(actor, model))
    found = {row.id: row for row in session.scalars(stmt)}
    return [found.get(i) for i in ids]


def by_column(
    session: Session, column: InstrumentedAttribute[Any], keys: Sequence[Any], *, actor: Actor
) -> list[list[Any]]:
    """For each key, the visible rows whose `column` equals it (children by parent), by id."""
    model = column.class_
    grouped: dict[Any, list[Any]] = defaultdict(list)
    stmt = (
        select(model)
        .where(column.in_(set(keys)), visible(actor, model), *_today(model))
        .order_by(model.id)
    )
    for row in session.scalars(stmt):
        grouped[getattr(row, column.key)].append(row)
    return [grouped.get(k, []) for k in keys]


def _today(model: Any) -> list[ColumnElement[bool]]:
    """The current rows of a kind that updates retire; nothing to add for other kinds."""
    return [model.current()] if issubclass(model, Retirable) else []


def district_by_code(session: Session, code: str | None, *, actor: Actor) -> District | None:
    """The visible district with `code`, or the first visible one when no code is given."""
    stmt = select(District).where(visible(actor, District)).order_by(District.id).limit(1)
    if code is not None:
        stmt = stmt.where(District.code == code)
    return session.scalar(stmt)


def containing(text: str, *columns: Any) -> ColumnElement[bool]:
    """Rows whose columns contain `text` as written: Chinese is searched as characters
    (地址 and 名称 have no word boundaries to match on); `%` and `_` are themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(*(c.ilike(f"%{escaped}%", escape="\\") for c in columns))
