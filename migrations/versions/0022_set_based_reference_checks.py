"""An activation's rows have their references checked once per statement, not once per row.

An activation writes tens of thousands of assignments, tasks and grid states at once
(xindu: 20,940, 20,320 and 10,161). PostgreSQL checks a foreign key row by row, one query
per row and key: 0.65 of the 0.9 s that COPY of the assignments took (issue 28). On
PostgreSQL these three tables' foreign keys become:

- on INSERT, one check per statement over all its new rows (a transition table), joined to
  each referenced table at once;
- on UPDATE, a check of the row whose reference changed (a move to another grid), and none
  when it did not (the phones' status changes);
- the referenced rows (mobilisations, people, grids, communities, streets) can no longer be
  deleted, nor their ids changed, by anyone: retire, don't delete. This also keeps a row
  referenced by a concurrent, uncommitted insert from vanishing under it, which is what the
  foreign key's row lock did.

A missing reference is refused with the foreign-key violation's SQLSTATE (23503), as before.
SQLite keeps its foreign keys (its checks are cheap).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> its references (column, referenced table; each referenced by its `id`)
CHECKED = {
    "assignment": (
        ("mobilisation_id", "mobilisation"),
        ("responder_id", "responder"),
        ("grid_id", "grid"),
        ("community_id", "community"),
    ),
    "task": (
        ("mobilisation_id", "mobilisation"),
        ("grid_id", "grid"),
        ("community_id", "community"),
    ),
    "grid_state": (
        ("mobilisation_id", "mobilisation"),
        ("grid_id", "grid"),
        ("community_id", "community"),
        ("street_id", "street"),
    ),
}
KEPT = ("mobilisation", "responder", "grid", "community", "street")


def _constraint(table: str, column: str, referenced: str) -> str:
    return f"fk_{table}_{column}_{referenced}"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION refuse_missing_reference(
            tab text, col text, referenced text, value text
        ) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                CONSTRAINT = format('fk_%s_%s_%s', tab, col, referenced),
                MESSAGE = format('%s.%s = %s: there is no %s %s', tab, col, value, referenced,
                                 value);
        END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION new_rows_reference_existing_rows() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            i integer := 0;
            missing text;
        BEGIN
            -- Arguments: column, referenced table, column, referenced table, ...
            WHILE i < TG_NARGS LOOP
                EXECUTE format(
                    'SELECT n.%1$I::text FROM new_rows n WHERE n.%1$I IS NOT NULL AND NOT '
                    'EXISTS (SELECT 1 FROM %2$I r WHERE r.id = n.%1$I) LIMIT 1',
                    TG_ARGV[i], TG_ARGV[i + 1]
                ) INTO missing;
                IF missing IS NOT NULL THEN
                    PERFORM refuse_missing_reference(TG_TABLE_NAME, TG_ARGV[i], TG_ARGV[i + 1],
                                                     missing);
                END IF;
                i := i + 2;
            END LOOP;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION changed_row_references_existing_rows() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            i integer := 0;
            value text;
            found boolean;
        BEGIN
            WHILE i < TG_NARGS LOOP
                value := to_jsonb(NEW) ->> TG_ARGV[i];
                IF value IS NOT NULL AND value IS DISTINCT FROM to_jsonb(OLD) ->> TG_ARGV[i] THEN
                    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE id = $1::integer)',
                                   TG_ARGV[i + 1])
                        INTO found USING value;
                    IF NOT found THEN
                        PERFORM refuse_missing_reference(TG_TABLE_NAME, TG_ARGV[i],
                                                         TG_ARGV[i + 1], value);
                    END IF;
                END IF;
                i := i + 2;
            END LOOP;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION kept_for_history() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING
                ERRCODE = 'restrict_violation',
                MESSAGE = format('%s %s is kept for history: retire it, do not %s it',
                                 TG_TABLE_NAME, OLD.id,
                                 CASE TG_OP WHEN 'DELETE' THEN 'delete'
                                            ELSE 'change the id of' END);
        END
        $$
        """
    )
    for table in KEPT:
        op.execute(
            f"CREATE TRIGGER {table}_kept_for_history BEFORE DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION kept_for_history()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_id_kept BEFORE UPDATE OF id ON {table} "
            "FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) "
            "EXECUTE FUNCTION kept_for_history()"
        )
    for table, references in CHECKED.items():
        for column, referenced in references:
            op.drop_constraint(_constraint(table, column, referenced), table, type_="foreignkey")
        arguments = ", ".join(f"'{c}', '{r}'" for c, r in references)
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c, _ in references)
        op.execute(
            f"CREATE TRIGGER {table}_references_on_insert AFTER INSERT ON {table} "
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION new_rows_reference_existing_rows({arguments})"
        )
        op.execute(
            f"CREATE TRIGGER {table}_references_on_update AFTER UPDATE ON {table} "
            f"FOR EACH ROW WHEN ({changed}) "
            f"EXECUTE FUNCTION changed_row_references_existing_rows({arguments})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, references in CHECKED.items():
        op.execute(f"DROP TRIGGER {table}_references_on_update ON {table}")
        op.execute(f"DROP TRIGGER {table}_references_on_insert ON {table}")
        for column, referenced in references:
            op.create_foreign_key(
                _constraint(table, column, referenced), table, referenced, [column], ["id"]
            )
    for table in KEPT:
        op.execute(f"DROP TRIGGER {table}_id_kept ON {table}")
        op.execute(f"DROP TRIGGER {table}_kept_for_history ON {table}")
    op.execute("DROP FUNCTION kept_for_history()")
    op.execute("DROP FUNCTION changed_row_references_existing_rows()")
    op.execute("DROP FUNCTION new_rows_reference_existing_rows()")
    op.execute("DROP FUNCTION refuse_missing_reference(text, text, text, text)")
