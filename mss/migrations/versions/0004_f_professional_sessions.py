"""professional sessions of the OpenID Connect login (/pro)

Revision ID: 0002f
Revises: 0002d
"""

import sqlalchemy as sa
from alembic import op

import mss.db

revision = "0002f"
down_revision = "0002d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "professional_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=True),
        sa.Column("nonce", sa.String(length=64), nullable=True),
        sa.Column("code_verifier", sa.String(length=128), nullable=True),
        sa.Column("professional_id", sa.Integer(), nullable=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("acr", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("created_at", mss.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", mss.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_professional_sessions_professional_id_professionals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_professional_sessions")),
    )
    with op.batch_alter_table("professional_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_professional_sessions_expires_at", ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_professional_sessions_professional_id"),
            ["professional_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("professional_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_professional_sessions_professional_id"))
        batch_op.drop_index("ix_professional_sessions_expires_at")
    op.drop_table("professional_sessions")
