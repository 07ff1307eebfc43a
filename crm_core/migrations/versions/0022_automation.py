"""automation rules with version history, their run log and the clocks of timed rules

Revision ID: 0022_automation
Revises: 0021_approvals
Create Date: 2026-11-26 13:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_automation"
down_revision = "0021_approvals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_automation_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("label_zh", sa.String(length=100), nullable=False),
        sa.Column("label_en", sa.String(length=100), nullable=True),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=True),
        sa.Column("field", sa.String(length=80), nullable=True),
        sa.Column("offset_days", sa.Integer(), nullable=True),
        sa.Column("time_of_day", sa.String(length=5), nullable=True),
        sa.Column("days", sa.String(length=20), nullable=True),
        sa.Column("join", sa.String(length=3), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=True),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_crm_automation_rule_updated_at", "crm_automation_rule", ["updated_at"])
    op.create_index("ix_crm_automation_rule_trigger", "crm_automation_rule", ["active", "trigger"])
    op.create_table(
        "crm_automation_rule_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("saved_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["crm_automation_rule.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rule_id", "number", name="uq_crm_automation_rule_version"),
    )
    op.create_table(
        "crm_automation_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("trigger_key", sa.String(length=80), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cause", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["rule_id"], ["crm_automation_rule.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "rule_id", "record_id", "trigger_key", name="uq_crm_automation_run_trigger"
        ),
    )
    op.create_index("ix_crm_automation_run_rule", "crm_automation_run", ["rule_id", "started_at"])
    op.create_index(
        "ix_crm_automation_run_due", "crm_automation_run", ["status", "next_attempt_at"]
    )
    op.create_table(
        "crm_automation_clock",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("checked_until", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["crm_automation_rule.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rule_id"),
    )


def downgrade() -> None:
    op.drop_table("crm_automation_clock")
    op.drop_index("ix_crm_automation_run_due", table_name="crm_automation_run")
    op.drop_index("ix_crm_automation_run_rule", table_name="crm_automation_run")
    op.drop_table("crm_automation_run")
    op.drop_table("crm_automation_rule_version")
    op.drop_index("ix_crm_automation_rule_trigger", table_name="crm_automation_rule")
    op.drop_index("ix_crm_automation_rule_updated_at", table_name="crm_automation_rule")
    op.drop_table("crm_automation_rule")
