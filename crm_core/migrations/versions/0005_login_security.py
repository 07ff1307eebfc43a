"""login security: wrong passwords and locks per account name, failed logins per IP address

Revision ID: 0005_login_security
Revises: 0004_record_rules
Create Date: 2026-12-03 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_login_security"
down_revision = "0004_record_rules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_login_lock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=True),
        sa.Column("last_failure_ip", sa.String(length=45), nullable=True),
        sa.Column("locked_at", sa.DateTime(), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account"),
    )
    with op.batch_alter_table("crm_login_lock", schema=None) as batch_op:
        batch_op.create_index("ix_crm_login_lock_user_id", ["user_id"], unique=False)
        batch_op.create_index("ix_crm_login_lock_locked_until", ["locked_until"], unique=False)

    op.create_table(
        "crm_login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("account", sa.String(length=320), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("crm_login_failure", schema=None) as batch_op:
        batch_op.create_index("ix_crm_login_failure_occurred_at", ["occurred_at"], unique=False)
        # The per-IP limit counts one address's recent failures from this index alone.
        batch_op.create_index("ix_crm_login_failure_ip", ["ip", "occurred_at"], unique=False)


def downgrade() -> None:
    op.drop_table("crm_login_failure")
    op.drop_table("crm_login_lock")
