"""data-quality score of each active customer

Revision ID: 0016_data_quality
Revises: 0015_merge
Create Date: 2026-11-26 11:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_data_quality"
down_revision = "0015_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_data_quality",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("completeness", sa.Integer(), nullable=False),
        sa.Column("validity", sa.Integer(), nullable=False),
        sa.Column("duplicate", sa.Boolean(), nullable=False),
        sa.Column("in_open_pair", sa.Boolean(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("issues", sa.JSON(), nullable=True),
        sa.Column("phone_key", sa.String(length=32), nullable=True),
        sa.Column("email_key", sa.String(length=32), nullable=True),
        sa.Column("rules_version", sa.String(length=16), nullable=False),
        sa.Column("customer_version", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["crm_customer.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index("ix_crm_data_quality_worst", "crm_data_quality", ["score", "customer_id"])
    op.create_index("ix_crm_data_quality_phone_key", "crm_data_quality", ["phone_key"])
    op.create_index("ix_crm_data_quality_email_key", "crm_data_quality", ["email_key"])


def downgrade() -> None:
    op.drop_index("ix_crm_data_quality_email_key", table_name="crm_data_quality")
    op.drop_index("ix_crm_data_quality_phone_key", table_name="crm_data_quality")
    op.drop_index("ix_crm_data_quality_worst", table_name="crm_data_quality")
    op.drop_table("crm_data_quality")
