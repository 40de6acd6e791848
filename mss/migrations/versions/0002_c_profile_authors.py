"""profile items: the professional author's name and the coded concept

A professional records allergies and treatments through the document API
(AllergyIntolerance, MedicationStatement): the item keeps the author's name
beside their idNat (``author``), and the code they sent (system and code)
so the resource reads back as it was written.

Revision ID: 0002c
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002c"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profile_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("author_name", sa.String(length=255), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("code", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("code_system", sa.String(length=255), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("profile_items", schema=None) as batch_op:
        batch_op.drop_column("code_system")
        batch_op.drop_column("code")
        batch_op.drop_column("author_name")
