"""1名楼栋长 per building: the wartime plan keeps a building's leader with their building."""

from __future__ import annotations

import dataclasses
import math

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.models import Assignment, Grid, Responder
from tests.wartime import activated


def test_a_building_leader_is_placed_in_the_micro_grid_of_their_building(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    # A volunteer on their own, who would otherwise go wherever is nearest, leads the
    # building farthest from their home.
    volunteer = next(
        r for r in tiny_bundle.responders if r.kind == "volunteer" and r.team is None and r.lon
    )
    x, y = volunteer.lon, volunteer.lat
    assert x is not None and y is not None
    far = max(tiny_bundle.buildings, key=lambda b: math.hypot(b.lon - x, b.lat - y))
    responders = [
        dataclasses.replace(r, leads_building=far.code)
        if r.code == volunteer.code
        else dataclasses.replace(r, leads_building=None)
        if r.leads_building == far.code
        else r
        for r in tiny_bundle.responders
    ]
    m = activated(engine, dataclasses.replace(tiny_bundle, responders=responders), clock)
    with Session(engine) as session:
        placed = session.execute(
            select(Grid.code)
            .join(Assignment, Assignment.grid_id == Grid.id)
            .join(Responder, Responder.id == Assignment.responder_id)
            .where(Assignment.mobilisation_id == m.id, Responder.code == volunteer.code)
        ).scalar_one()
    assert placed == far.micro_grid
