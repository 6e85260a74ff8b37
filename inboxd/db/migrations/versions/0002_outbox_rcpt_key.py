"""outbox.rcpt_key and an index for the hourly acknowledgement cap

The cap used to read every ack row of the last hour and scan its JSON
recipients (920 acks: 6 s of a 2,000-mail batch); ``rcpt_key`` (the first
envelope recipient, lowercased) makes it one index range count.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import json

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "rcpt_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""
            )
        )
        batch_op.create_index(
            "ix_outbox_rcpt_kind_created", ["rcpt_key", "kind", "created_at"], unique=False
        )
    # existing rows: first recipient, as enqueue writes it from now on
    outbox = sa.table(
        "outbox", sa.column("id", sa.Integer()), sa.column("rcpts"), sa.column("rcpt_key")
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.rcpts)).all()
    updates = []
    for row_id, rcpts in rows:
        values = json.loads(rcpts) if isinstance(rcpts, str | bytes) else rcpts
        if values:
            updates.append({"row_id": row_id, "key": str(values[0]).lower()})
    if updates:
        conn.execute(
            outbox.update()
            .where(outbox.c.id == sa.bindparam("row_id"))
            .values(rcpt_key=sa.bindparam("key")),
            updates,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_rcpt_kind_created")
        batch_op.drop_column("rcpt_key")
