"""An independent check of the maintained grid states (`mobilize coverage --verify`).

Every figure is derived again from the raw rows (the micro-grids in the mobilisation's area,
their households, each person's assignment, each household record) and the staffing rule,
by code that shares nothing with `coverage.service`: not its counting queries, not its status
rule. A fault in either then shows as a difference instead of agreeing with itself. Only the
first-mobilised times are taken from the states: they are history (when a grid first had its
minimum), not something the rows still say."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from mobilize.coverage.service import Coverage, curve_of, figures_to_coverage
from mobilize.models import (
    Assignment,
    Community,
    Grid,
    GridLevel,
    GridState,
    Household,
    HouseholdRecord,
    Mobilisation,
    MobilisationArea,
)

# The people a grid counts, by what they have done so far (released, declined and no-show
# people hold nothing).
_STILL_ASSIGNED = "assigned"
_ON_THE_WAY = ("acknowledged", "en_route")
_THERE = "on_site"


def grid_status(minimum: int, people: list[str], households: int, checked: int) -> str:
    """Where one micro-grid stands, from its people's statuses, in the rule's own words:
    mobilised once `minimum` people are on site, checked once every household is too;
    before that arriving when anyone has answered, assigned when anyone holds it."""
    there = sum(1 for s in people if s == _THERE)
    if there >= minimum:
        return "mobilised" if checked < households else "checked"
    if any(s in _ON_THE_WAY or s == _THERE for s in people):
        return "arriving"
    return "assigned" if any(s == _STILL_ASSIGNED for s in people) else "unstaffed"


def recount(
    session: Session,
    *,
    mobilisation: Mobilisation,
    now: datetime,
    street_id: int | None = None,
    community_id: int | None = None,
) -> Coverage:
    """The coverage of a scope as the raw rows say it should be."""
    minimum = int(mobilisation.rule["min_on_site"])
    grids_q = (
        select(Grid.id)
        .join(MobilisationArea, MobilisationArea.community_id == Grid.community_id)
        .join(Community, Community.id == Grid.community_id)
        .where(MobilisationArea.mobilisation_id == mobilisation.id, Grid.level == GridLevel.MICRO)
    )
    if street_id is not None:
        grids_q = grids_q.where(Community.street_id == street_id)
    if community_id is not None:
        grids_q = grids_q.where(Grid.community_id == community_id)
    grid_ids = set(session.scalars(grids_q))

    households = Counter(
        dict(
            session.execute(
                select(Household.micro_grid_id, func.count())
                .where(Household.micro_grid_id.in_(grids_q.scalar_subquery()))
                .group_by(Household.micro_grid_id)
            ).all()
        )
    )
    checked = Counter(
        dict(
            session.execute(
                select(Household.micro_grid_id, func.count(distinct(Household.id)))
                .join(HouseholdRecord, HouseholdRecord.household_id == Household.id)
                .where(
                    HouseholdRecord.mobilisation_id == mobilisation.id,
                    HouseholdRecord.kind == "check",
                    Household.micro_grid_id.in_(grids_q.scalar_subquery()),
                )
                .group_by(Household.micro_grid_id)
            ).all()
        )
    )
    people: dict[int, list[str]] = defaultdict(list)
    for grid_id, status in session.execute(
        select(Assignment.grid_id, Assignment.status).where(
            Assignment.mobilisation_id == mobilisation.id
        )
    ):
        if grid_id in grid_ids:
            people[grid_id].append(status)

    by_status = dict.fromkeys(("unstaffed", "assigned", "arriving", "mobilised", "checked"), 0)
    for grid_id in grid_ids:
        by_status[grid_status(minimum, people[grid_id], households[grid_id], checked[grid_id])] += 1
    first_mobilised = session.scalars(
        select(GridState.mobilised_at).where(
            GridState.mobilisation_id == mobilisation.id,
            GridState.grid_id.in_(grids_q.scalar_subquery()),
        )
    ).all()
    return figures_to_coverage(
        mobilisation,
        mobilisation.stood_down_at or now,
        by_status,
        sum(households[g] for g in grid_ids),
        sum(checked[g] for g in grid_ids),
        curve_of(mobilisation, first_mobilised),
    )
