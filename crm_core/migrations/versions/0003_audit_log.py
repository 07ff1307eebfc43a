"""audit log: crm_audit_log, append-only, one entry per changed business record

Revision ID: 0003_audit_log
Revises: 0002_customer_lists
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_audit_log"
down_revision = "0002_customer_lists"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(length=10), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("crm_audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_crm_audit_log_occurred_at", ["occurred_at"], unique=False)
        batch_op.create_index("ix_crm_audit_log_user_id", ["user_id"], unique=False)
        # A record's history, newest first (the 360° page), from the index alone.
        batch_op.create_index("ix_crm_audit_log_record", ["model", "record_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("crm_audit_log")
