"""Volunteer service: hours from check-in to release, and the points they earn."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from mobilize.db.bulk import insert_rows
from mobilize.mobilisation.rules import StaffingRule
from mobilize.models import Assignment, Mobilisation, ServiceRecord, table_of
from mobilize.peacetime.ledger import points_for


def record_service(
    session: Session,
    *,
    mobilisation: Mobilisation,
    released: Sequence[Assignment],
    now: datetime,
) -> None:
    """Hours from check-in to release, and the points they earn, for everyone released who
    had checked in (志愿服务时长与积分)."""
    rule = StaffingRule.from_dict(mobilisation.rule)
    rows = []
    for a in released:
        if a.checked_in_at is None:
            continue
        hours = max(0.0, (now - a.checked_in_at).total_seconds() / 3600.0)
        rows.append(
            {
                "mobilisation_id": mobilisation.id,
                "responder_id": a.responder_id,
                "checked_in_at": a.checked_in_at,
                "released_at": now,
                "hours": round(hours, 2),
                "points": points_for(
                    {
                        "points_per_hour": rule.points_per_hour,
                        "points_per_activity": rule.points_per_activity,
                    },
                    hours,
                ),
            }
        )
    insert_rows(session, table_of(ServiceRecord), rows)
