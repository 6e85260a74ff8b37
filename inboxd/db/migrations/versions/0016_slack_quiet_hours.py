"""Slack alerts held for the quiet-hours summary at the team's next opening

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slackdeferred",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("dedupe_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("claim", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("summarized_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name="fk_slackdeferred_ticket_id_ticket"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_slackdeferred"),
        sa.UniqueConstraint("dedupe_key", name="uq_slackdeferred_dedupe_key"),
    )
    op.create_index("ix_slackdeferred_due", "slackdeferred", ["claim", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_slackdeferred_due", table_name="slackdeferred")
    op.drop_table("slackdeferred")
