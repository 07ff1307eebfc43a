"""record rules (which records of a model each role may read and write) and stored list anchors

Revision ID: 0004_record_rules
Revises: 0003_audit_log
Create Date: 2026-11-26 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_record_rules"
down_revision = "0003_audit_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_record_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("read_scope", sa.String(length=10), nullable=False),
        sa.Column("write_scope", sa.String(length=10), nullable=False),
        sa.Column("pool", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["ab_role.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("role_id", "model", name="uq_crm_record_rule_role_model"),
    )
    op.create_table(
        "crm_list_anchor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_key", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sort_value", sa.String(length=500), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_key", "position", name="uq_crm_list_anchor_position"),
    )


def downgrade() -> None:
    op.drop_table("crm_list_anchor")
    op.drop_table("crm_record_rule")
