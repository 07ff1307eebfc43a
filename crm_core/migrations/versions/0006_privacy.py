"""privacy (PIPL): consent records of customers and contacts

Revision ID: 0006_privacy
Revises: 0005_login_security
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_privacy"
down_revision = "0005_login_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=30), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["crm_customer.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["crm_contact.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("crm_consent", schema=None) as batch_op:
        batch_op.create_index("ix_crm_consent_customer_id", ["customer_id"], unique=False)
        batch_op.create_index("ix_crm_consent_contact_id", ["contact_id"], unique=False)
        batch_op.create_index("ix_crm_consent_updated_at", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_table("crm_consent")
