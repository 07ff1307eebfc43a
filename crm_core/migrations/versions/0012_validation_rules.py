"""validation rules admins write per record type

Revision ID: 0012_validation_rules
Revises: 0011_picklists
Create Date: 2026-11-26 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_validation_rules"
down_revision = "0011_picklists"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_validation_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("join", sa.String(length=3), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=True),
        sa.Column("target", sa.String(length=80), nullable=False),
        sa.Column("check", sa.String(length=20), nullable=False),
        sa.Column("argument", sa.String(length=200), nullable=True),
        sa.Column("message_zh", sa.String(length=300), nullable=False),
        sa.Column("message_en", sa.String(length=300), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("crm_validation_rule")
