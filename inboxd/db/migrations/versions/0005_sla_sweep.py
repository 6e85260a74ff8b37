"""the SLA sweep's index and the stages that fired

* ``ticket.sla_due_at`` (indexed): when the sweep must look at a ticket next,
  so a sweep reads only the tickets that are due, however many are open.
  Open tickets with a policy start due now, so the first sweep computes them.
* ``sla_stage``: one row per fired stage; its unique key makes a stage fire
  exactly once per ticket, target, clock cycle and stage.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sla_due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.create_index("ix_ticket_sla_due_at", ["sla_due_at"], unique=False)
    op.execute(
        sa.text(
            "UPDATE ticket SET sla_due_at = updated_at WHERE sla_policy IS NOT NULL"
            " AND status IN ('new', 'open', 'pending')"
        )
    )
    op.create_table(
        "slastage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("fired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], name="fk_slastage_ticket_id_ticket"),
        sa.PrimaryKeyConstraint("id", name="pk_slastage"),
        sa.UniqueConstraint("ticket_id", "target", "cycle", "stage", name="uq_sla_stage_key"),
    )


def downgrade() -> None:
    op.drop_table("slastage")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_sla_due_at")
        batch_op.drop_column("sla_due_at")
