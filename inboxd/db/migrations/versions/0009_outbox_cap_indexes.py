"""indexes for the hourly ack caps: by kind and time, and by recipient domain

The domain and global ack caps counted acks of the last hour by reading the
whole ``ix_outbox_rcpt_kind_created`` index (its first column is the
recipient), once per new ticket: a cost that grew with the outbox. Now:

* ``ix_outbox_kind_created`` (kind, created_at): the global cap is a range;
* ``outbox.rcpt_domain`` (the first recipient's domain, filled for existing
  rows) with ``ix_outbox_domain_kind_created``: the domain cap is a range.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "rcpt_domain",
                sqlmodel.sql.sqltypes.AutoString(),
                nullable=False,
                server_default="",
            )
        )
        batch_op.create_index("ix_outbox_kind_created", ["kind", "created_at"], unique=False)
        batch_op.create_index(
            "ix_outbox_domain_kind_created", ["rcpt_domain", "kind", "created_at"], unique=False
        )
    outbox = sa.table(
        "outbox",
        sa.column("id", sa.Integer()),
        sa.column("rcpt_key", sa.String()),
        sa.column("rcpt_domain", sa.String()),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.rcpt_key)).all()
    updates = [
        {"row_id": row_id, "domain": key.rpartition("@")[2]} for row_id, key in rows if "@" in key
    ]
    if updates:
        conn.execute(
            outbox.update()
            .where(outbox.c.id == sa.bindparam("row_id"))
            .values(rcpt_domain=sa.bindparam("domain")),
            updates,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_domain_kind_created")
        batch_op.drop_index("ix_outbox_kind_created")
        batch_op.drop_column("rcpt_domain")
