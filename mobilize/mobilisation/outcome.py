"""What wartime operations return (`Outcome`) and the refusals they share."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from mobilize.errors import DomainError, NotFound
from mobilize.models import (
    Assignment,
    Mobilisation,
)


class AlreadyActive(DomainError):
    code = "ALREADY_ACTIVE"

    def __init__(self, mobilisation: Mobilisation) -> None:
        super().__init__(
            f"该区域已在战时状态 Already in wartime: mobilisation {mobilisation.id} "
            f"“{mobilisation.title}” covers part of this scope"
        )
        self.mobilisation_id = mobilisation.id
        self.title = mobilisation.title


class AlreadyStoodDown(DomainError):
    code = "ALREADY_STOOD_DOWN"

    def __init__(self, mobilisation: Mobilisation) -> None:
        super().__init__(
            f"已转入平时状态 Mobilisation {mobilisation.id} “{mobilisation.title}” was already "
            "stood down"
        )
        self.mobilisation_id = mobilisation.id


class InvalidTransition(DomainError):
    code = "INVALID_TRANSITION"

    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"不能从 {current} 变为 {wanted}: the assignment is {current}")
        self.current = current


class Conflict(DomainError):
    """Someone else changed what the request was based on; look again and retry."""

    code = "CONFLICT"


@dataclass
class Outcome:
    """What a wartime operation did: the mobilisation, the ids to notify, and whether this is
    the replay of an earlier request with the same client mutation id."""

    mobilisation: Mobilisation
    batches: list[str] = field(default_factory=list)
    replayed: bool = False
    assignment: Assignment | None = None
    jobs: list[str] = field(default_factory=list)  # job runs to start after commit


def get_mobilisation(session: Session, mobilisation_id: int) -> Mobilisation:
    found = session.get(Mobilisation, mobilisation_id)
    if found is None:
        raise NotFound(f"没有这次动员 No mobilisation {mobilisation_id}")
    return found
