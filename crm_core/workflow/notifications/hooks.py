"""Notifications, registered through the same hooks as any plugin: the inbox and its bell,
the users' notification settings, the built-in channels, the admin screens and delivery."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...hookimpl import hookimpl
from ...lowcode.bundle import ConfigSection
from ...specs import ApiSpec, ChannelSpec, Event, EventTypeSpec, RoleSpec, SettingSpec, ViewSpec
from .admin_views import ChannelsView, DeliveryLogView
from .channels import builtin_channels
from .config import setting_specs
from .delivery import deliver_event
from .inbox import navbar_unread
from .models import Notification, NotificationDelivery, NotificationPreference
from .notify import EVENT, KINDS
from .views import INBOX, PREFERENCES, InboxView, NotificationApi, PreferencesView

ADMIN = {
    "category": "Administration",
    "category_label": _l("Administration"),
    "category_icon": "fa-cogs",
}
#: Every default role has an inbox and its notification settings.
ROLES = (
    "Sales Manager",
    "Sales Rep",
    "Service Agent",
    "Marketing",
    "Analyst",
    "Read-only",
    "Integration",
)
USER_PERMISSIONS = (
    ("can_list", INBOX),
    ("can_edit", PREFERENCES),
    ("can_get", "NotificationApi"),
    ("can_post", "NotificationApi"),
)


@hookimpl
def register_models() -> list[type]:
    return [Notification, NotificationDelivery, NotificationPreference]


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(InboxView, INBOX, _l("Notifications")),
        ViewSpec(PreferencesView, PREFERENCES, _l("Notification settings")),
        ViewSpec(
            ChannelsView,
            "Notification channels",
            _l("Notification channels"),
            icon="fa-bell",
            **ADMIN,
        ),
        ViewSpec(
            DeliveryLogView,
            "Notification deliveries",
            _l("Notification deliveries"),
            icon="fa-paper-plane",
            **ADMIN,
        ),
    ]


@hookimpl
def register_apis() -> list[ApiSpec]:
    return [ApiSpec(NotificationApi, _l("Notifications"))]


@hookimpl
def register_roles() -> list[RoleSpec]:
    return [RoleSpec(role, USER_PERMISSIONS) for role in ROLES]


@hookimpl
def register_settings() -> list[SettingSpec]:
    return setting_specs()


@hookimpl
def register_notification_channels() -> list[ChannelSpec]:
    return builtin_channels()


@hookimpl
def register_event_types() -> list[EventTypeSpec]:
    return [EventTypeSpec(EVENT, _l("Notifications queued for e-mail or robots"))]


@hookimpl
def on_event(event: Event) -> None:
    deliver_event(event)


# --------------------------------------------------------------------------- bundle


def export_defaults(session: Session) -> dict[str, Any]:
    rows = session.scalars(
        select(NotificationPreference)
        .where(NotificationPreference.user_id.is_(None))
        .order_by(NotificationPreference.kind)
    )
    return {row.kind: list(row.channels) for row in rows}


def apply_defaults(session: Session, data: Any, changes: list[str], problems: list[str]) -> None:
    from .notify import channels

    offered = set(channels())
    for kind, picked in (data or {}).items():
        where = f"notification_defaults.{kind}"
        if kind not in KINDS:
            problems.append(f"{where}: unknown kind of notification")
            continue
        if not isinstance(picked, list) or not all(isinstance(c, str) for c in picked):
            problems.append(f"{where}: a list of channel names is expected")
            continue
        unknown = sorted(set(picked) - offered)
        if unknown:
            problems.append(f"{where}: unknown channels {', '.join(unknown)}")
            continue
        row = session.scalar(
            select(NotificationPreference).where(
                NotificationPreference.user_id.is_(None), NotificationPreference.kind == kind
            )
        )
        if row is None:
            session.add(NotificationPreference(user_id=None, kind=kind, channels=list(picked)))
            changes.append(f"{where}: added")
        elif list(row.channels) != list(picked):
            changes.append(f"{where}: {list(row.channels)!r} → {list(picked)!r}")
            row.channels = list(picked)
    session.flush()


@hookimpl
def register_config_sections() -> list[ConfigSection]:
    """``notification_defaults``: ``{kind: [channel, ...]}``, the channels a kind of
    notification uses for users who did not choose (secrets stay out of bundles)."""
    return [ConfigSection("notification_defaults", export_defaults, apply_defaults)]


@hookimpl
def app_configured(app: Flask) -> None:
    """Collect the channels every module registers, and give templates the bell's count."""
    registry = app.extensions["crm"]
    found: dict[str, tuple[str, ChannelSpec]] = {}
    for owner, spec in registry.collect_specs("register_notification_channels"):
        found.setdefault(spec.name, (owner, spec))
    app.extensions["crm_notification_channels"] = found
    app.jinja_env.globals["crm_unread_notifications"] = navbar_unread
