"""customer list indexes: (active, updated_at, id) and (active, name, id)

Revision ID: 0002_customer_lists
Revises: 0001_core
Create Date: 2026-11-27 10:00:00
"""

from alembic import op

revision = "0002_customer_lists"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Serve the customer screen's default order (newest first) and name order, including the
    # id-only scans of deep pages and keyset pages, from the index alone (crm_core.web.listing).
    op.create_index(
        "ix_crm_customer_active_updated", "crm_customer", ["active", "updated_at", "id"]
    )
    op.create_index("ix_crm_customer_active_name", "crm_customer", ["active", "name", "id"])


def downgrade() -> None:
    op.drop_index("ix_crm_customer_active_name", table_name="crm_customer")
    op.drop_index("ix_crm_customer_active_updated", table_name="crm_customer")
