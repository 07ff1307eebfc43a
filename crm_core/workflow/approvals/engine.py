"""Starting and deciding approvals: the public API automation rules and plugins call.

- :func:`start` submits a record to a process (its entry conditions must hold, and no other
  approval may be pending on the record); the record is locked until the approval ends.
- :func:`decide` records an approver's ``approve``, ``reject`` or ``send_back``: approving moves
  the approval to its next step or ends it ``approved``; rejecting ends it ``rejected``; sending
  back ends it ``sent_back`` and returns the record to the submitter, who may change it and
  submit it again (a new approval).
- :func:`pending_for` and :func:`is_locked` tell whether a record waits for an approval.

The end of an approval emits the domain event ``approval.approved``, ``approval.rejected`` or
``approval.sent_back`` with ``{"id", "process", "model", "record_id", "submitter_id"}``;
automation rules and plugins react to those. None of these functions commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, object_session

from ...db import model_class, utcnow
from ...db import session as current_session
from ...errors import CrmError, FieldError, PermissionDenied
from ...events.outbox import emit
from ...lowcode import conditions as cond
from ...security.rules import unrestricted
from . import notices
from . import steps as step_defs
from .models import (
    ApprovalAction,
    ApprovalInstance,
    ApprovalProcess,
    ApprovalProcessVersion,
    ApprovalTask,
)

DECISIONS = ("approve", "reject", "send_back")
#: Records whose approval is ending in this session: their outcome writes pass the lock.
_OUTCOME_KEY = "crm_approval_outcome_writes"


class ApprovalError(CrmError):
    """An approval that cannot be started or decided, with the reason for the user."""

    status = 422


def record_key(record: Any) -> tuple[str, int | None]:
    """``(model, id)`` of a stored record (id ``None`` for one not stored yet)."""
    identity = inspect(record).identity
    return type(record).__name__, identity[0] if identity else None


def latest_version(session: Session, process: ApprovalProcess) -> ApprovalProcessVersion | None:
    """The version of ``process`` new approvals start with."""
    query = (
        select(ApprovalProcessVersion)
        .where(ApprovalProcessVersion.process_id == process.id)
        .order_by(ApprovalProcessVersion.number.desc())
        .limit(1)
    )
    return session.scalar(query)


def conditions_hold(process: ApprovalProcess, record: Any) -> bool:
    """Whether ``record`` meets the entry conditions of ``process``."""
    return cond.all_hold(record, process.parsed(), process.join)


def pending_for(session: Session, record: Any) -> ApprovalInstance | None:
    """The approval pending on ``record``, if any."""
    model, pk = record_key(record)
    if pk is None:
        return None
    with session.no_autoflush:
        rows = session.scalars(
            select(ApprovalInstance).where(
                ApprovalInstance.model == model,
                ApprovalInstance.record_id == pk,
                ApprovalInstance.status == "pending",
            )
        )
        # An approval ending in this very flush already says so in the session.
        return next((row for row in rows if row.status == "pending"), None)


def is_locked(record: Any) -> bool:
    """Whether ``record`` waits for an approval (and so may not be changed)."""
    session = object_session(record) or current_session()
    return pending_for(session, record) is not None


def may_write(session: Session, record: Any) -> bool:
    """Whether a write of ``record`` is an approval's own outcome (see :func:`outcome_writes`)."""
    return record_key(record) in session.info.get(_OUTCOME_KEY, set())


@contextmanager
def outcome_writes(session: Session, record: Any) -> Iterator[None]:
    """Let the block write ``record`` although an approval is pending on it: the approval's
    own outcome (a plugin setting the approved credit limit while deciding)."""
    keys = session.info.setdefault(_OUTCOME_KEY, set())
    key = record_key(record)
    keys.add(key)
    try:
        yield
    finally:
        keys.discard(key)


def _owner_id(record: Any, submitter: Any) -> int | None:
    owner = getattr(record, "owner_id", None)
    return int(owner) if owner is not None else getattr(submitter, "id", None)


def _record(session: Session, instance: ApprovalInstance) -> Any:
    cls = model_class(instance.model)
    if cls is None:
        return None
    with unrestricted():  # the approval's own work, whoever decides
        return session.get(cls, instance.record_id)


def log_action(
    session: Session, instance: ApprovalInstance, user: Any, action: str, comment: str = ""
) -> ApprovalAction:
    row = ApprovalAction(
        instance_id=instance.id,
        step_index=instance.step_index,
        user_id=getattr(user, "id", None),
        action=action,
        comment=(comment or "").strip() or None,
        created_at=utcnow(),
    )
    session.add(row)
    return row


def _open_step(session: Session, instance: ApprovalInstance, record: Any) -> None:
    """Create the tasks of the instance's current step and tell its approvers."""
    step = instance.steps()[instance.step_index]
    owner = _owner_id(record, instance.submitter)
    users = step_defs.approvers(session, step, owner)
    if not users:
        raise step_defs.no_approver(instance.step_index + 1)
    now = utcnow()
    hours = step.get("timeout_hours")
    for user in users:
        session.add(
            ApprovalTask(
                instance_id=instance.id,
                step_index=instance.step_index,
                user_id=user.id,
                status="pending",
                created_at=now,
                remind_at=now + timedelta(hours=hours / 2) if hours else None,
                due_at=now + timedelta(hours=hours) if hours else None,
            )
        )
    notices.to_approvers(session, instance, users, record)


def start(
    session: Session, record: Any, process_name: str, submitter: Any, comment: str = ""
) -> ApprovalInstance:
    """Submit ``record`` to the process named ``process_name`` on behalf of ``submitter``.

    Refused (:class:`ApprovalError`) when the process does not exist, is inactive or is for
    another record type, when its entry conditions do not hold, or when an approval is
    already pending on the record; a step without any approver is a
    :class:`~crm_core.errors.FieldError`. The first step's approvers get a task and a
    notification. The caller commits.
    """
    process = session.scalar(select(ApprovalProcess).where(ApprovalProcess.name == process_name))
    model, pk = record_key(record)
    if process is None or not process.active or process.model != model or pk is None:
        raise ApprovalError(
            str(_l("There is no active approval process %(name)s here.", name=process_name))
        )
    pending = pending_for(session, record)
    if pending is not None:
        raise ApprovalError(
            str(_l("This record already waits for the approval %(name)s.", name=pending.process))
        )
    if not conditions_hold(process, record):
        raise ApprovalError(
            str(_l("This record does not meet the conditions of %(name)s.", name=process))
        )
    version = latest_version(session, process)
    if version is None or not version.steps:
        raise ApprovalError(str(_l("The approval process %(name)s has no steps.", name=process)))
    instance = ApprovalInstance(
        process_id=process.id,
        version_id=version.id,
        model=model,
        record_id=pk,
        record_label=str(record)[:200],
        status="pending",
        step_index=0,
        submitter_id=getattr(submitter, "id", None),
    )
    session.add(instance)
    session.flush()
    log_action(session, instance, submitter, "submit", comment)
    _open_step(session, instance, record)
    session.flush()
    return instance


def current_tasks(session: Session, instance: ApprovalInstance) -> list[ApprovalTask]:
    """The tasks of the instance's current step."""
    query = (
        select(ApprovalTask)
        .where(
            ApprovalTask.instance_id == instance.id,
            ApprovalTask.step_index == instance.step_index,
        )
        .order_by(ApprovalTask.id)
    )
    return list(session.scalars(query))


def task_of(session: Session, instance: ApprovalInstance, user: Any) -> ApprovalTask | None:
    """``user``'s open task in the current step of ``instance``, if any."""
    if instance.status != "pending" or user is None:
        return None
    return next(
        (
            t
            for t in current_tasks(session, instance)
            if t.user_id == user.id and t.status == "pending"
        ),
        None,
    )


def _step_done(step: dict[str, Any], tasks: list[ApprovalTask]) -> bool:
    if any(t.escalated_from_id is not None and t.status == "approved" for t in tasks):
        return True  # the escalation target decides for the step
    if not step_defs.needs_everyone(step):
        return any(t.status == "approved" for t in tasks)
    asked = [t for t in tasks if t.escalated_from_id is None]
    return bool(asked) and all(t.status == "approved" for t in asked)


def _close_open(tasks: list[ApprovalTask], now: Any) -> None:
    for t in tasks:
        if t.status == "pending":
            t.status = "closed"
            t.decided_at = now


def _finish(session: Session, instance: ApprovalInstance, status: str, record: Any) -> None:
    instance.status = status
    instance.finished_at = utcnow()
    emit(
        session,
        f"approval.{status}",
        {
            "id": instance.id,
            "process": instance.process.name,
            "model": instance.model,
            "record_id": instance.record_id,
            "submitter_id": instance.submitter_id,
        },
    )
    notices.to_submitter(session, instance, record)


def decide(
    session: Session, instance: ApprovalInstance, user: Any, action: str, comment: str = ""
) -> ApprovalInstance:
    """``user`` approves, rejects or sends back (``action``) the current step of ``instance``.

    Only an approver with an open task in the current step may decide
    (:class:`~crm_core.errors.PermissionDenied` otherwise); rejecting and sending back need a
    comment (a :class:`~crm_core.errors.FieldError` on ``comment``). The caller commits.
    """
    if action not in DECISIONS:
        raise FieldError({"action": [str(_l("Choose approve, reject or send back."))]})
    if instance.status != "pending":
        raise ApprovalError(str(_l("This approval has already ended.")))
    task = task_of(session, instance, user)
    if task is None:
        raise PermissionDenied(str(_l("You are not an approver of this step.")))
    comment = (comment or "").strip()
    if action != "approve" and not comment:
        raise FieldError({"comment": [str(_l("Say why in a comment."))]})
    now = utcnow()
    task.status = {"approve": "approved", "reject": "rejected", "send_back": "sent_back"}[action]
    task.decided_at = now
    log_action(session, instance, user, action, comment)
    record = _record(session, instance)
    tasks = current_tasks(session, instance)
    if action != "approve":
        _close_open(tasks, now)
        _finish(session, instance, "rejected" if action == "reject" else "sent_back", record)
    elif _step_done(instance.steps()[instance.step_index], tasks):
        _close_open(tasks, now)
        if instance.step_index + 1 < len(instance.steps()):
            instance.step_index += 1
            session.flush()
            _open_step(session, instance, record)
        else:
            _finish(session, instance, "approved", record)
    session.flush()
    return instance


def startable(session: Session, record: Any) -> list[ApprovalProcess]:
    """The active processes of ``record``'s type whose entry conditions it meets (none while
    an approval is pending on it)."""
    model, pk = record_key(record)
    if pk is None or pending_for(session, record) is not None:
        return []
    rows = session.scalars(
        select(ApprovalProcess)
        .where(ApprovalProcess.model == model, ApprovalProcess.active.is_(True))
        .order_by(ApprovalProcess.name)
    )
    return [p for p in rows if conditions_hold(p, record)]
