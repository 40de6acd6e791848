"""folders.first_recent_uid: the \\Recent floor of each folder (IMAP)

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('folders') as batch:
        batch.add_column(sa.Column('first_recent_uid', sa.BigInteger(), server_default='1', nullable=False))
    # Messages already stored are not new to anyone.
    op.execute("UPDATE folders SET first_recent_uid = uidnext")


def downgrade() -> None:
    with op.batch_alter_table('folders') as batch:
        batch.drop_column('first_recent_uid')
