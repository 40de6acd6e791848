"""S/MIME encryption: recipients' encryption certificates, messages that arrived encrypted

Revision ID: 0004j
Revises: 0002i
"""
from alembic import op
import sqlalchemy as sa
import mss.db


revision = '0004j'
down_revision = '0002i'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recipient_certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('pem', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('not_after', mss.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('imported_at', mss.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recipient_certificates')),
    sa.UniqueConstraint('sha256', name=op.f('uq_recipient_certificates_sha256'))
    )
    with op.batch_alter_table('recipient_certificates', schema=None) as batch_op:
        batch_op.create_index('ix_recipient_certificates_address', ['address'], unique=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('arrived_encrypted', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('arrived_encrypted')
    with op.batch_alter_table('recipient_certificates', schema=None) as batch_op:
        batch_op.drop_index('ix_recipient_certificates_address')
    op.drop_table('recipient_certificates')
