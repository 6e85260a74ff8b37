"""satisfaction surveys: when a solved ticket's survey is due, and one survey per ticket

* ``ticket.survey_due_at`` (indexed): the time of the ticket's latest solve, set
  by the writer; the survey job reads the tickets whose solve is older than the
  configured delay (an index range) and clears it.
* ``survey``: one row per ticket (unique), the survey's number bound into its
  answer tokens; the unique key makes a survey go out at most once per ticket.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("survey_due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.create_index("ix_ticket_survey_due_at", ["survey_due_at"], unique=False)
    op.create_table(
        "survey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], name="fk_survey_ticket_id_ticket"),
        sa.PrimaryKeyConstraint("id", name="pk_survey"),
        sa.UniqueConstraint("ticket_id", name="uq_survey_ticket_id"),
    )


def downgrade() -> None:
    op.drop_table("survey")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_survey_due_at")
        batch_op.drop_column("survey_due_at")
