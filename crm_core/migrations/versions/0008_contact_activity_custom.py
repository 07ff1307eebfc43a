"""custom fields on contacts and follow-ups: a custom JSON column on crm_contact and crm_activity

Revision ID: 0008_contact_activity_custom
Revises: 0007_custom_fields
Create Date: 2026-11-26 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_contact_activity_custom"
down_revision = "0007_custom_fields"
branch_labels = None
depends_on = None

TABLES = ("crm_contact", "crm_activity")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("custom", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("custom")
