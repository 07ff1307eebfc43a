"""choice custom fields may take their choices from a picklist

Revision ID: 0018_field_picklist
Revises: 0017_imports
Create Date: 2026-11-26 11:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_field_picklist"
down_revision = "0017_imports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crm_field_def") as batch:
        batch.add_column(sa.Column("picklist", sa.String(length=60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crm_field_def") as batch:
        batch.drop_column("picklist")
