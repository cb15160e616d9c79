"""The one lock order of wartime writes: communities first, then the district's roster; and
the district's people, for enrolments."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobilize.db.engine import is_postgres
from mobilize.models import MobilisationArea


def lock_communities(
    session: Session, mobilisation_id: int, community_ids: Iterable[int], *, shared: bool = False
) -> bool:
    """Take the locks of these communities in a mobilisation, in id order, before any other
    lock: a decline re-plans its community (updating others' assignments and grid states)
    while acknowledgements and check-ins there update the same rows in another order, so
    writers of one community go one at a time. `shared`: for writes that touch only their
    own grid's rows (a household record): they run side by side, but never beside a writer
    holding the community alone. SQLite has one writer anyway (its write transactions begin
    IMMEDIATE): nothing to take there. Whether locks were taken (rows read before may have
    changed while waiting for them)."""
    ids = sorted(set(community_ids))
    if not ids or not is_postgres(session.get_bind()):
        return False
    session.execute(
        select(MobilisationArea.id)
        .where(
            MobilisationArea.mobilisation_id == mobilisation_id,
            MobilisationArea.community_id.in_(ids),
        )
        .order_by(MobilisationArea.community_id)
        .with_for_update(read=shared)
    ).all()
    return True


def lock_every_community(session: Session, mobilisation_id: int) -> None:
    """For changes across a whole mobilisation (stand-down, escalation, the deadline)."""
    lock_communities(
        session,
        mobilisation_id,
        session.scalars(
            select(MobilisationArea.community_id).where(
                MobilisationArea.mobilisation_id == mobilisation_id
            )
        ),
    )


ROSTER_LOCK = 7101  # the first key of the district roster's advisory lock (the second: the id)


def lock_roster(session: Session, district_id: int) -> None:
    """Take the district's roster before reading who is free and putting people into slots
    (an activation's solve, a re-plan, a risk fix calling someone up), after any community
    lock. Two such writes in one district then go one after the other, each reading what the
    other committed: two activations of communities paired with the same unit can no longer
    both call its cadres, nor two re-plans the same free volunteer. SQLite has one writer
    anyway; the partial unique index on holding assignments stands behind both."""
    if is_postgres(session.get_bind()):
        session.execute(select(func.pg_advisory_xact_lock(ROSTER_LOCK, district_id)))


PEOPLE_LOCK = 7102  # the first key of the district people's advisory lock (the second: the id)


def lock_people(session: Session, district_id: int) -> None:
    """Take the district's people before checking that a code and a phone are free and
    putting a person on the roster (an enrolment, an edit of a phone, an application
    approved). Two such writes then go one after the other: the second sees the first's
    person, so one phone never signs two people in, and the refusal names what a second
    enrolment made alone would be told. SQLite has one writer anyway."""
    if is_postgres(session.get_bind()):
        session.execute(select(func.pg_advisory_xact_lock(PEOPLE_LOCK, district_id)))
