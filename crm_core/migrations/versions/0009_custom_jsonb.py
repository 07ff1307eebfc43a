"""custom values as JSONB on PostgreSQL (indexable); other databases keep JSON

Revision ID: 0009_custom_jsonb
Revises: 0008_contact_activity_custom
Create Date: 2026-11-26 07:00:00
"""

from alembic import op

revision = "0009_custom_jsonb"
down_revision = "0008_contact_activity_custom"
branch_labels = None
depends_on = None

TABLES = ("crm_customer", "crm_contact", "crm_activity")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN custom TYPE JSONB USING custom::jsonb")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN custom TYPE JSON USING custom::json")
