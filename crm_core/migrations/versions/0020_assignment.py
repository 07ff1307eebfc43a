"""assignment rules and the round-robin turn of each rule

Revision ID: 0020_assignment
Revises: 0019_notifications
Create Date: 2026-11-26 12:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_assignment"
down_revision = "0019_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_assignment_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("join", sa.String(length=3), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("include_subteams", sa.Boolean(), nullable=False),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("days", sa.String(length=20), nullable=True),
        sa.Column("start_time", sa.String(length=5), nullable=True),
        sa.Column("end_time", sa.String(length=5), nullable=True),
        sa.Column("when_unavailable", sa.String(length=10), nullable=False),
        sa.Column("set_team", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["crm_team.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model", "name", name="uq_crm_assignment_rule_name"),
    )
    op.create_table(
        "crm_assignment_rule_user",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["crm_assignment_rule.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rule_id", "user_id"),
    )
    op.create_table(
        "crm_assignment_turn",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("last_user_id", sa.Integer(), nullable=True),
        sa.Column("assigned", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["crm_assignment_rule.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rule_id"),
    )


def downgrade() -> None:
    op.drop_table("crm_assignment_turn")
    op.drop_table("crm_assignment_rule_user")
    op.drop_table("crm_assignment_rule")
