"""duplicate customer pairs to review, and the link from a merged customer to its survivor

Revision ID: 0015_merge
Revises: 0014_layouts
Create Date: 2026-11-26 11:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_merge"
down_revision = "0014_layouts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_duplicate_pair",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("left_id", sa.Integer(), nullable=False),
        sa.Column("right_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("found_at", sa.DateTime(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["decided_by_id"], ["ab_user.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model", "left_id", "right_id", name="uq_crm_duplicate_pair"),
    )
    op.create_index(
        "ix_crm_duplicate_pair_open",
        "crm_duplicate_pair",
        ["model", "status", "score", "id"],
    )
    op.create_index("ix_crm_duplicate_pair_right", "crm_duplicate_pair", ["model", "right_id"])
    with op.batch_alter_table("crm_customer") as batch:
        batch.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_crm_customer_merged_into", "crm_customer", ["merged_into_id"], ["id"]
        )
        batch.create_index("ix_crm_customer_merged_into_id", ["merged_into_id"])


def downgrade() -> None:
    with op.batch_alter_table("crm_customer") as batch:
        # the foreign key first: MariaDB refuses to drop an index a foreign key needs
        batch.drop_constraint("fk_crm_customer_merged_into", type_="foreignkey")
        batch.drop_index("ix_crm_customer_merged_into_id")
        batch.drop_column("merged_into_id")
    op.drop_index("ix_crm_duplicate_pair_right", table_name="crm_duplicate_pair")
    op.drop_index("ix_crm_duplicate_pair_open", table_name="crm_duplicate_pair")
    op.drop_table("crm_duplicate_pair")
