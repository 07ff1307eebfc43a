"""approval processes with versioned steps, their instances, approver tasks and history

Revision ID: 0021_approvals
Revises: 0020_assignment
Create Date: 2026-11-26 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_approvals"
down_revision = "0020_assignment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_approval_process",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("label_zh", sa.String(length=100), nullable=False),
        sa.Column("label_en", sa.String(length=100), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("join", sa.String(length=3), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_crm_approval_process_updated_at", "crm_approval_process", ["updated_at"])
    op.create_table(
        "crm_approval_process_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["process_id"], ["crm_approval_process.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("process_id", "number", name="uq_crm_approval_process_version"),
    )
    op.create_table(
        "crm_approval_instance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("record_label", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("submitter_id", sa.Integer(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["process_id"], ["crm_approval_process.id"]),
        sa.ForeignKeyConstraint(["version_id"], ["crm_approval_process_version.id"]),
        sa.ForeignKeyConstraint(["submitter_id"], ["ab_user.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_crm_approval_instance_record",
        "crm_approval_instance",
        ["model", "record_id", "status"],
    )
    op.create_index(
        "ix_crm_approval_instance_submitter", "crm_approval_instance", ["submitter_id", "status"]
    )
    op.create_index("ix_crm_approval_instance_updated_at", "crm_approval_instance", ["updated_at"])
    op.create_table(
        "crm_approval_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("escalated_from_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("remind_at", sa.DateTime(), nullable=True),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("reminded_at", sa.DateTime(), nullable=True),
        sa.Column("escalated_at", sa.DateTime(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["crm_approval_instance.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["escalated_from_id"], ["crm_approval_task.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_crm_approval_task_instance_id", "crm_approval_task", ["instance_id"])
    op.create_index("ix_crm_approval_task_user", "crm_approval_task", ["user_id", "status"])
    op.create_index("ix_crm_approval_task_remind", "crm_approval_task", ["status", "remind_at"])
    op.create_index("ix_crm_approval_task_due", "crm_approval_task", ["status", "due_at"])
    op.create_table(
        "crm_approval_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["crm_approval_instance.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_crm_approval_action_instance_id", "crm_approval_action", ["instance_id"])


def downgrade() -> None:
    op.drop_table("crm_approval_action")
    op.drop_table("crm_approval_task")
    op.drop_table("crm_approval_instance")
    op.drop_table("crm_approval_process_version")
    op.drop_table("crm_approval_process")
