"""The reminder job: approvers of a step open past half its timeout are reminded, and a step
past its timeout is escalated to its escalation target, once each.

Each task keeps ``reminded_at`` and ``escalated_at``, written in the same transaction as the
reminder's notification and the history line, so a job run that dies rolls back both and the
next run does it again, and a finished run is never repeated. Tasks are read in batches by the
indexed ``(status, remind_at)`` and ``(status, due_at)``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...db import session as current_session
from ...db import utcnow
from . import notices
from .engine import current_tasks, log_action
from .models import ApprovalInstance, ApprovalTask

JOB_ID = "core.approval_reminders"
BATCH = 500


def _due(session: Session, column: Any, marker: Any, after: int, now: Any) -> list[ApprovalTask]:
    query = (
        select(ApprovalTask)
        .join(ApprovalInstance, ApprovalInstance.id == ApprovalTask.instance_id)
        .where(
            ApprovalTask.status == "pending",
            column.is_not(None),
            column <= now,
            marker.is_(None),
            ApprovalTask.id > after,
            ApprovalInstance.status == "pending",
            ApprovalInstance.step_index == ApprovalTask.step_index,
        )
        .order_by(ApprovalTask.id)
        .limit(BATCH)
    )
    return list(session.scalars(query))


def remind(session: Session) -> int:
    """Remind the approvers of tasks past half their timeout; how many were reminded."""
    now, after, count = utcnow(), 0, 0
    while batch := _due(session, ApprovalTask.remind_at, ApprovalTask.reminded_at, after, now):
        for task in batch:
            task.reminded_at = now
            notices.reminder(session, task.instance, [task.user_id])
            log_action(session, task.instance, None, "remind", str(task.user))
            count += 1
        after = batch[-1].id
        session.commit()
    return count


def escalate(session: Session) -> int:
    """Escalate each overdue step to its target (one new task per step); how many steps."""
    now, after, count = utcnow(), 0, 0
    while batch := _due(session, ApprovalTask.due_at, ApprovalTask.escalated_at, after, now):
        for task in batch:
            if task.escalated_at is not None:
                continue  # its step was escalated for another of its tasks
            instance = task.instance
            for sibling in current_tasks(session, instance):
                if sibling.due_at is not None and sibling.escalated_at is None:
                    sibling.escalated_at = now
            step = instance.steps()[task.step_index]
            target = step.get("escalate_to")
            user = session.scalar(select(User).where(User.username == target)) if target else None
            log_action(session, instance, None, "escalate", str(user) if user is not None else "")
            count += 1
            if user is None:
                continue
            session.add(
                ApprovalTask(
                    instance_id=instance.id,
                    step_index=task.step_index,
                    user_id=user.id,
                    status="pending",
                    escalated_from_id=task.id,
                    created_at=now,
                )
            )
            notices.escalated(session, instance, [user])
        after = batch[-1].id
        session.commit()
    return count


def run(app: Flask) -> dict[str, int]:
    """The job: reminders first, then escalations; the counts go to the run log."""
    session = current_session()
    return {"reminded": remind(session), "escalated": escalate(session)}
