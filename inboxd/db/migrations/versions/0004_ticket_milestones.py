"""ticket milestones: first agent reply, last customer mail, solved, closed, reopens

The ticket domain (``core.desk``) keeps the moments SLA clocks and reports
start from on the ticket row. Existing tickets are filled from what the
database already holds: the first ``agent_reply`` event, the newest mail a
person sent, and the status change time of tickets solved or closed now.
Reopens before this revision are not counted (their events said only
"customer replied", like a pending ticket's answer), so ``reopened_count``
starts at 0.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = ("first_agent_reply_at", "last_customer_mail_at", "solved_at", "closed_at")


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(
                sa.Column(name, sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
            )
        batch_op.add_column(
            sa.Column("reopened_count", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.alter_column("reopened_count", server_default=None)
    op.execute(
        sa.text(
            "UPDATE ticket SET first_agent_reply_at = (SELECT MIN(event.at) FROM event"
            " WHERE event.ticket_id = ticket.id AND event.kind = 'agent_reply')"
        )
    )
    op.execute(
        sa.text(
            "UPDATE ticket SET last_customer_mail_at = (SELECT MAX(message.received_at)"
            " FROM message WHERE message.ticket_id = ticket.id AND message.direction = 'in'"
            " AND message.kind = 'normal')"
        )
    )
    op.execute(sa.text("UPDATE ticket SET solved_at = status_changed_at WHERE status = 'solved'"))
    op.execute(sa.text("UPDATE ticket SET closed_at = status_changed_at WHERE status = 'closed'"))


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        for name in (*_COLUMNS, "reopened_count"):
            batch_op.drop_column(name)
