"""custom fields on gadgets

Revision ID: 0002_testplugin_custom
Revises: 0001_testplugin
Create Date: 2026-11-26 07:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_testplugin_custom"
down_revision = "0001_testplugin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.add_column("tp_gadget", sa.Column("custom", json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tp_gadget") as batch:
        batch.drop_column("custom")
