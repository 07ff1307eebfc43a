"""encryption at rest: crm_field_def.encrypted / encryption_pending and the blind index

Revision ID: 0010_encryption
Revises: 0009_custom_jsonb
Create Date: 2026-11-27 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_encryption"
down_revision = "0009_custom_jsonb"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crm_field_def") as batch:
        batch.add_column(
            sa.Column("encrypted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("encryption_pending", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "crm_blind_index",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_crm_blind_index_digest", "crm_blind_index", ["model", "field", "digest"])
    op.create_index("ix_crm_blind_index_record", "crm_blind_index", ["model", "record_id"])


def downgrade() -> None:
    op.drop_table("crm_blind_index")
    with op.batch_alter_table("crm_field_def") as batch:
        batch.drop_column("encryption_pending")
        batch.drop_column("encrypted")
