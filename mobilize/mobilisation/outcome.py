"""What wartime operations return (`Outcome`) and the refusals they share."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from mobilize.errors import DomainError, NotFound
from mobilize.models import (
    Assignment,
    Mobilisation,
    Responder,
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


@dataclass(kw_only=True)
class Queued:
    """What an operation leaves for after its commit: the notification batches to deliver and
    the job runs to start (the edge hands both to its dispatcher)."""

    batches: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)


@dataclass
class Outcome(Queued):
    """What a wartime operation did: the mobilisation, what it queued, and whether this is
    the replay of an earlier request with the same client mutation id."""

    mobilisation: Mobilisation
    replayed: bool = False
    assignment: Assignment | None = None


@dataclass
class PersonOutcome(Queued):
    """What an operation on a person did (marking them unavailable): the person, and what it
    queued for the mobilisations they were released from."""

    responder: Responder


def get_mobilisation(session: Session, mobilisation_id: int) -> Mobilisation:
    found = session.get(Mobilisation, mobilisation_id)
    if found is None:
        raise NotFound(f"没有这次动员 No mobilisation {mobilisation_id}")
    return found
