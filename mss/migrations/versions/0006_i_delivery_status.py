"""delivery statuses: each sent message's latest status per recipient (mss.delivery_status)

Revision ID: 0002i
Revises: 0002e
"""

import sqlalchemy as sa
from alembic import op

import mss.db

revision = "0002i"
down_revision = "0002e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("detail_fr", sa.Text(), nullable=False),
        sa.Column("updated_at", mss.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_statuses")),
    )
    with op.batch_alter_table("delivery_statuses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_statuses_message", ["message_id", "recipient"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_statuses_sender"), ["sender"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery_statuses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_statuses_sender"))
        batch_op.drop_index("ix_delivery_statuses_message")
    op.drop_table("delivery_statuses")
