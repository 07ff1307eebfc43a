"""notifications: the in-app inbox, deliveries to other channels, per-user preferences

Revision ID: 0019_notifications
Revises: 0018_field_picklist
Create Date: 2026-11-26 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_notifications"
down_revision = "0018_field_picklist"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=80), nullable=True),
        sa.Column("record_model", sa.String(length=60), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_crm_notification_user", "crm_notification", ["user_id", "id"])
    op.create_index("ix_crm_notification_unread", "crm_notification", ["user_id", "read_at"])
    op.create_table(
        "crm_notification_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["notification_id"], ["crm_notification.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_crm_notification_delivery_notification",
        "crm_notification_delivery",
        ["notification_id"],
    )
    op.create_index(
        "ix_crm_notification_delivery_status", "crm_notification_delivery", ["status", "id"]
    )
    op.create_table(
        "crm_notification_pref",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "kind", name="uq_crm_notification_pref_user_kind"),
    )


def downgrade() -> None:
    op.drop_table("crm_notification_pref")
    op.drop_table("crm_notification_delivery")
    op.drop_table("crm_notification")
