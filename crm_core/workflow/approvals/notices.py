"""The notifications of approvals (kind ``approval``): a task to approvers, reminders and
escalations, and the outcome to the submitter. Each links to the approval's page."""

from __future__ import annotations

import logging
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from .models import STATUSES, ApprovalInstance

log = logging.getLogger(__name__)
SOURCE = "approvals"


def url_of(instance: ApprovalInstance) -> str:
    """The approval's page (history, and the decision form for its approvers)."""
    return f"/approvals/{instance.id}"


def _send(session: Session, users: Any, title: str, body: str, instance: Any, record: Any) -> None:
    try:
        from ..notifications.notify import notify
    except ImportError:  # a CRM without the notifications module: the inbox screen still shows it
        log.warning("notifications are not available; approval %s not announced", instance.id)
        return
    notify(
        session,
        users,
        title,
        body,
        url=url_of(instance),
        kind="approval",
        source=SOURCE,
        record=record,
    )


def to_approvers(
    session: Session, instance: ApprovalInstance, users: list[Any], record: Any
) -> None:
    title = _l(
        "Please approve: %(process)s — %(record)s",
        process=instance.process,
        record=instance.record_label,
    )
    _send(session, users, str(title), "", instance, record)


def reminder(session: Session, instance: ApprovalInstance, users: list[Any]) -> None:
    title = _l(
        "Reminder: %(process)s — %(record)s waits for your approval",
        process=instance.process,
        record=instance.record_label,
    )
    _send(session, users, str(title), "", instance, None)


def escalated(session: Session, instance: ApprovalInstance, users: list[Any]) -> None:
    title = _l(
        "Escalated to you: %(process)s — %(record)s is overdue",
        process=instance.process,
        record=instance.record_label,
    )
    _send(session, users, str(title), "", instance, None)


def to_submitter(session: Session, instance: ApprovalInstance, record: Any) -> None:
    if instance.submitter_id is None:
        return
    title = _l(
        "%(process)s — %(record)s: %(status)s",
        process=instance.process,
        record=instance.record_label,
        status=STATUSES.get(instance.status, instance.status),
    )
    _send(session, [instance.submitter_id], str(title), "", instance, record)
