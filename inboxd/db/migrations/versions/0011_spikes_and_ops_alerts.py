"""spike detection and ops alerts: tag arrivals, watched tags, lasting alerts

* ``tagarrival`` (tag, at): one row per customer mail and watched tag, counted
  per window through ``ix_tagarrival_tag_at``; ``ix_tagarrival_at`` purges.
* ``spikewatch``: since when each tag is counted (its baseline's history).
* ``opsalert``: a spike or a mailbox outage, its own Slack message, unique key.
* ``slackthread.ticket_id`` nullable: an ops alert's message is a thread too.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tagarrival",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tag", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tagarrival"),
    )
    with op.batch_alter_table("tagarrival", schema=None) as batch_op:
        batch_op.create_index("ix_tagarrival_tag_at", ["tag", "at"], unique=False)
        batch_op.create_index("ix_tagarrival_at", ["at"], unique=False)
    op.create_table(
        "spikewatch",
        sa.Column("tag", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tag", name="pk_spikewatch"),
    )
    op.create_table(
        "opsalert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("ended_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("peak", sa.Integer(), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_opsalert"),
        sa.UniqueConstraint("key", name="uq_opsalert_key"),
    )
    with op.batch_alter_table("opsalert", schema=None) as batch_op:
        batch_op.create_index(
            "ix_opsalert_kind_subject", ["kind", "subject", "ended_at"], unique=False
        )
    with op.batch_alter_table("slackthread", schema=None) as batch_op:
        batch_op.alter_column("ticket_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute(
        "DELETE FROM slacknotice WHERE thread_id IN "
        "(SELECT id FROM slackthread WHERE ticket_id IS NULL)"
    )
    op.execute("DELETE FROM slackthread WHERE ticket_id IS NULL")
    with op.batch_alter_table("slackthread", schema=None) as batch_op:
        batch_op.alter_column("ticket_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("opsalert")
    op.drop_table("spikewatch")
    op.drop_table("tagarrival")
