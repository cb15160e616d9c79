"""Number and append a commit's events in one statement on PostgreSQL.

Every wartime write's commit locks its mobilisation's event counter until it commits, so the
district's writes pass that point one at a time. Numbering, the time raise and the insert
used to be four round trips from a busy API process inside that section; as one function
call the section is two (the call, then COMMIT).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION append_events(
            m integer, times timestamptz[], actors text[], kinds text[], subject_types text[],
            subject_ids text[], payloads text[]
        ) RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            last_n integer;
            last_t timestamptz;
        BEGIN
            SELECT last_mseq, last_at INTO last_n, last_t
                FROM event_counter WHERE mobilisation_id = m FOR UPDATE;
            IF NOT FOUND THEN  -- the mobilisation's first commit makes its counter
                INSERT INTO event_counter (mobilisation_id, last_mseq, last_at)
                    VALUES (m, 0, times[1]) ON CONFLICT DO NOTHING;
                SELECT last_mseq, last_at INTO STRICT last_n, last_t
                    FROM event_counter WHERE mobilisation_id = m FOR UPDATE;
            END IF;
            -- An event's time is raised, if need be, to its predecessor's.
            INSERT INTO event (occurred_at, actor, kind, subject_type, subject_id, payload,
                               mobilisation_id, mseq)
            SELECT greatest(last_t, max(r.t) OVER (ORDER BY r.n)), r.a, r.k, r.st, r.si,
                   r.p::json, m, last_n + r.n
            FROM unnest(times, actors, kinds, subject_types, subject_ids, payloads)
                WITH ORDINALITY AS r(t, a, k, st, si, p, n)
            ORDER BY r.n;
            UPDATE event_counter
                SET last_mseq = last_n + cardinality(times),
                    last_at = greatest(last_t, (SELECT max(t) FROM unnest(times) AS t))
                WHERE mobilisation_id = m;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "DROP FUNCTION append_events(integer, timestamptz[], text[], text[], text[], text[], "
        "text[])"
    )
