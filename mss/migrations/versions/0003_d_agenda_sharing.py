"""agenda shared with professionals: the patient's choice, the chosen professionals, and the
author of an appointment a professional added

Revision ID: 0002d
Revises: 0002c
"""

import sqlalchemy as sa
from alembic import op

import mss.db

revision = "0002d"
down_revision = "0002c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agenda_sharing",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("sharing", sa.String(length=16), nullable=False),
        sa.Column("updated_at", mss.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_agenda_sharing_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_agenda_sharing")),
    )
    op.create_table(
        "agenda_shared_professionals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("id_nat", sa.String(length=32), nullable=False),
        sa.Column("chosen_at", mss.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_agenda_shared_professionals_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agenda_shared_professionals")),
        sa.UniqueConstraint(
            "patient_id", "id_nat", name=op.f("uq_agenda_shared_professionals_patient_id")
        ),
    )
    with op.batch_alter_table("agenda_shared_professionals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agenda_shared_professionals_patient_id"), ["patient_id"], unique=False
        )
    with op.batch_alter_table("agenda_appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("author_id_nat", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("author_name", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agenda_appointments", schema=None) as batch_op:
        batch_op.drop_column("author_name")
        batch_op.drop_column("author_id_nat")
    with op.batch_alter_table("agenda_shared_professionals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agenda_shared_professionals_patient_id"))
    op.drop_table("agenda_shared_professionals")
    op.drop_table("agenda_sharing")
