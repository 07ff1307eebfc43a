"""testplugin tables

Revision ID: 0001_testplugin
Revises:
Create Date: 2026-11-26 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_testplugin"
down_revision = None
branch_labels = ("testplugin",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tp_gadget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["crm_customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tp_gadget_customer_id", "tp_gadget", ["customer_id"])
    op.create_index("ix_tp_gadget_updated_at", "tp_gadget", ["updated_at"])
    op.create_table(
        "tp_seen_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; MariaDB refuses to drop an index a foreign key uses.
    op.drop_table("tp_seen_event")
    op.drop_table("tp_gadget")
