"""Approval processes and their versions, instances on records, approver tasks and the history.

A process (``ApprovalProcess``) names the record type it approves and its entry conditions; its
steps live in numbered versions (``ApprovalProcessVersion``): changing the steps adds a version,
and an instance keeps the version it started with until it ends. Every table is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from flask_appbuilder.security.sqla import models as _fab_models  # noqa: F401 - User
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ...db import TimestampMixin, utcnow
from ...lowcode import conditions as cond
from ...lowcode.picklists import label_in_language

#: What an instance can be: waiting for a step's approvers, or ended one way or another.
STATUSES = {
    "pending": _l("Pending approval"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
    "sent_back": _l("Sent back"),
}
#: What happens in an instance's history.
ACTIONS = {
    "submit": _l("Submitted"),
    "approve": _l("Approved"),
    "reject": _l("Rejected"),
    "send_back": _l("Sent back"),
    "remind": _l("Reminder sent"),
    "escalate": _l("Escalated"),
}


class ApprovalProcess(TimestampMixin, Model):
    """An approval process (审批流程) of one record type, with its entry conditions."""

    __tablename__ = "crm_approval_process"
    __crm_event__ = "approval_process"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    label_zh: Mapped[str] = mapped_column(String(100), nullable=False)
    label_en: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    join: Mapped[str] = mapped_column(String(3), default="all", nullable=False)
    conditions: Mapped[Any] = mapped_column(JSON, nullable=True)

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return label_in_language(self.label_zh, self.label_en)

    def parsed(self) -> list[cond.Condition]:
        return [cond.Condition(**c) for c in self.conditions or []]


class ApprovalProcessVersion(Model):
    """The steps of a process as they were from ``created_at`` on (version 1, 2, …)."""

    __tablename__ = "crm_approval_process_version"
    __crm_event__ = "approval_process_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[int] = mapped_column(
        ForeignKey("crm_approval_process.id", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    #: ``[{"kind", "targets", "timeout_hours", "escalate_to", "name"}, …]``, see ``steps.py``.
    steps: Mapped[Any] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    process = relationship("ApprovalProcess")

    __table_args__ = (
        UniqueConstraint("process_id", "number", name="uq_crm_approval_process_version"),
    )


class ApprovalInstance(TimestampMixin, Model):
    """One run of a process on one record. While ``status`` is ``pending`` the record is
    locked; ``step_index`` is the step (from 0) waiting for its approvers."""

    __tablename__ = "crm_approval_instance"
    __crm_event__ = "approval"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("crm_approval_process.id"), nullable=False)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("crm_approval_process_version.id"), nullable=False
    )
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    record_id: Mapped[int] = mapped_column(Integer, nullable=False)
    #: How the record was named when submitted (shown to approvers who may not read it).
    record_label: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(10), default="pending", nullable=False)
    step_index: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    submitter_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    process = relationship("ApprovalProcess")
    version = relationship("ApprovalProcessVersion")
    submitter = relationship("User", foreign_keys=[submitter_id])

    __table_args__ = (
        Index("ix_crm_approval_instance_record", "model", "record_id", "status"),
        Index("ix_crm_approval_instance_submitter", "submitter_id", "status"),
    )

    def steps(self) -> list[dict[str, Any]]:
        return list(self.version.steps or [])


class ApprovalTask(Model):
    """One approver's part in one step of an instance. ``remind_at`` and ``due_at`` come from
    the step's timeout; ``reminded_at`` and ``escalated_at`` mark what the reminder job did, so
    a restart neither repeats nor loses a reminder or an escalation."""

    __tablename__ = "crm_approval_task"
    __crm_event__ = "approval_task"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("crm_approval_instance.id", ondelete="CASCADE"), nullable=False, index=True
    )
    step_index: Mapped[int] = mapped_column(Integer, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), default="pending", nullable=False)
    #: Set on a task given to the step's escalation target: it decides for the whole step.
    escalated_from_id: Mapped[int | None] = mapped_column(ForeignKey("crm_approval_task.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    remind_at: Mapped[datetime | None] = mapped_column(DateTime)
    due_at: Mapped[datetime | None] = mapped_column(DateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)

    instance = relationship("ApprovalInstance")
    user = relationship("User", foreign_keys=[user_id])

    __table_args__ = (
        Index("ix_crm_approval_task_user", "user_id", "status"),
        Index("ix_crm_approval_task_remind", "status", "remind_at"),
        Index("ix_crm_approval_task_due", "status", "due_at"),
    )


class ApprovalAction(Model):
    """One line of an instance's history: who did what, with which comment, when."""

    __tablename__ = "crm_approval_action"
    __crm_event__ = "approval_action"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("crm_approval_instance.id", ondelete="CASCADE"), nullable=False, index=True
    )
    step_index: Mapped[int] = mapped_column(Integer, nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(10), nullable=False)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    user = relationship("User", foreign_keys=[user_id])
