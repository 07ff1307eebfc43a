"""picklists: lists of values admins edit, and their values

Revision ID: 0011_picklists
Revises: 0010_encryption
Create Date: 2026-11-26 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_picklists"
down_revision = "0010_encryption"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_picklist",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("label_zh", sa.String(length=100), nullable=False),
        sa.Column("label_en", sa.String(length=100), nullable=True),
        sa.Column("owner", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "crm_picklist_value",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("picklist_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=50), nullable=False),
        sa.Column("label_zh", sa.String(length=100), nullable=False),
        sa.Column("label_en", sa.String(length=100), nullable=True),
        sa.Column("color", sa.String(length=20), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["picklist_id"], ["crm_picklist.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("picklist_id", "value", name="uq_crm_picklist_value"),
    )


def downgrade() -> None:
    op.drop_table("crm_picklist_value")
    op.drop_table("crm_picklist")
