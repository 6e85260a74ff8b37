"""Slack living messages: one thread per ticket and channel, notice rows know their call

* ``slackthread``: where a ticket's root message is (channel, ts) and the state
  digest it shows; unique per ticket and channel.
* ``slacknotice.call`` (post | root | reply | update), ``thread_id`` and
  ``digest``: every Slack call is a row first; existing rows are plain posts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slacknotice", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "call", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default="post"
            )
        )
        batch_op.add_column(sa.Column("thread_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "digest", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""
            )
        )
        batch_op.create_index("ix_slacknotice_thread_id", ["thread_id"], unique=False)
    with op.batch_alter_table("slacknotice", schema=None) as batch_op:
        batch_op.alter_column("call", server_default=None)
        batch_op.alter_column("digest", server_default=None)
    op.create_table(
        "slackthread",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ts", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name="fk_slackthread_ticket_id_ticket"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_slackthread"),
        sa.UniqueConstraint("ticket_id", "channel", name="uq_slack_thread_ticket_channel"),
    )


def downgrade() -> None:
    op.drop_table("slackthread")
    with op.batch_alter_table("slacknotice", schema=None) as batch_op:
        batch_op.drop_index("ix_slacknotice_thread_id")
        batch_op.drop_column("digest")
        batch_op.drop_column("thread_id")
        batch_op.drop_column("call")
