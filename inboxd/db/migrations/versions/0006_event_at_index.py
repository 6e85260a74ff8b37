"""an index on event (at, ticket_id) for reports

``inboxd report`` starts from the tickets with any event since the period
began: with this index that is a range of the index (and index-only), not a
scan of the whole event log.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_event_at_ticket", "event", ["at", "ticket_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_event_at_ticket", table_name="event")
