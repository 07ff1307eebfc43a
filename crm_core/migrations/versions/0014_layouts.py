"""layouts of record types per role: form and record page sections, list columns and order

Revision ID: 0014_layouts
Revises: 0013_duplicate_rules
Create Date: 2026-11-26 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_layouts"
down_revision = "0013_duplicate_rules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_layout",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=True),
        sa.Column("sections", sa.JSON(), nullable=True),
        sa.Column("hidden", sa.JSON(), nullable=True),
        sa.Column("list_columns", sa.JSON(), nullable=True),
        sa.Column("order_column", sa.String(length=80), nullable=True),
        sa.Column("order_direction", sa.String(length=4), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["ab_role.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("role_id", "model", name="uq_crm_layout_role_model"),
    )


def downgrade() -> None:
    op.drop_table("crm_layout")
