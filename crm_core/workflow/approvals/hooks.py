"""Approvals, registered through the same hooks as any module: tables, screens, the reminder
job, event types, the 360° panel, the configuration bundle section, and the record lock."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import object_session

from ...hookimpl import hookimpl
from ...specs import Change, EventTypeSpec, JobSpec, PanelSpec, RoleSpec, ViewSpec
from . import engine, reminders
from .admin_views import ApprovalProcessView
from .bundle import SECTION
from .models import (
    ApprovalAction,
    ApprovalInstance,
    ApprovalProcess,
    ApprovalProcessVersion,
    ApprovalTask,
)
from .views import INBOX_MENU, INBOX_VIEW, ApprovalInboxView, customer_panel

_OWN = (ApprovalProcess, ApprovalProcessVersion, ApprovalInstance, ApprovalTask, ApprovalAction)
#: Every default role works its approvals inbox and submits records for approval.
_ROLES = (
    "Sales Manager",
    "Sales Rep",
    "Service Agent",
    "Marketing",
    "Analyst",
    "Read-only",
)


@hookimpl
def register_models() -> list[type]:
    return list(_OWN)


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(
            ApprovalProcessView,
            "Approval processes",
            _l("Approval processes"),
            icon="fa-sitemap",
            category="Administration",
            category_label=_l("Administration"),
            category_icon="fa-cogs",
        ),
        ViewSpec(
            ApprovalInboxView,
            INBOX_MENU,
            _l("My approvals"),
            icon="fa-tasks",
            category="Workflow",
            category_label=_l("Workflow"),
            category_icon="fa-random",
        ),
    ]


@hookimpl
def register_roles() -> list[RoleSpec]:
    permissions = (
        ("can_inbox", INBOX_VIEW),
        ("can_decide", INBOX_VIEW),
        ("can_submit", INBOX_VIEW),
        ("menu_access", INBOX_MENU),
        ("menu_access", "Workflow"),
    )
    return [RoleSpec(role, permissions) for role in _ROLES]


@hookimpl
def register_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            reminders.JOB_ID,
            reminders.run,
            "interval",
            {"minutes": 5},
            title="Remind approvers and escalate overdue approval steps",
        )
    ]


@hookimpl
def register_event_types() -> list[EventTypeSpec]:
    return [
        EventTypeSpec("approval.created", _l("Submitted for approval")),
        EventTypeSpec("approval.approved", _l("Approval approved")),
        EventTypeSpec("approval.rejected", _l("Approval rejected")),
        EventTypeSpec("approval.sent_back", _l("Approval sent back")),
    ]


@hookimpl
def register_customer_panels() -> list[PanelSpec]:
    return [PanelSpec("approvals", _l("Approvals"), customer_panel, order=50)]


@hookimpl
def register_config_sections() -> list[Any]:
    return [SECTION]


@hookimpl
def validate_change(change: Change) -> str | None:
    """A record waiting for an approval may not be changed (but by the approval itself)."""
    record = change.record
    if change.operation == "create" or isinstance(record, _OWN):
        return None
    session = object_session(record)
    if session is None or engine.may_write(session, record):
        return None
    pending = engine.pending_for(session, record)
    if pending is None:
        return None
    return _(
        "This record waits for the approval %(name)s and cannot be changed until it ends.",
        name=pending.process,
    )
