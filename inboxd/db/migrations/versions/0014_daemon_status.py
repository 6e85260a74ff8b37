"""daemon and mailbox status: what ``inboxd status`` (another process) reads

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daemonstate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("rules_generation", sa.Integer(), nullable=False),
        sa.Column("rules_reloaded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("rules_trigger", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("rules_errors", sa.Integer(), nullable=False),
        sa.Column("rules_error", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_daemonstate"),
    )
    op.create_index("ix_daemonstate_heartbeat_at", "daemonstate", ["heartbeat_at"])
    op.create_table(
        "mailboxhealth",
        sa.Column("mailbox", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("last_sync_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("last_error_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("reported_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("mailbox", name="pk_mailboxhealth"),
    )


def downgrade() -> None:
    op.drop_table("mailboxhealth")
    op.drop_index("ix_daemonstate_heartbeat_at", table_name="daemonstate")
    op.drop_table("daemonstate")
