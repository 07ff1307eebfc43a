"""Syncing permissions and default roles; run by ``crm upgrade``, never by web workers."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from .db import session
from .security.models import RecordRule
from .specs import RuleSpec


def sync_roles() -> None:
    """Create every view's permissions, give them all to Admin, and apply plugins' default roles.

    Permissions a role already has are kept, so admins' changes to a default role survive.
    """
    appbuilder = current_app.appbuilder  # type: ignore[attr-defined]
    sm = appbuilder.sm
    sm.add_role(current_app.config["AUTH_ROLE_ADMIN"])
    sm.add_role(current_app.config["AUTH_ROLE_PUBLIC"])
    appbuilder.add_permissions(update_perms=True)
    registry = current_app.extensions["crm"]
    admin = sm.find_role(current_app.config["AUTH_ROLE_ADMIN"])
    for _owner, spec in registry.collect_specs("register_roles"):
        role = sm.add_role(spec.name)
        for permission, view in spec.permissions:
            pv = sm.add_permission_view_menu(permission, view)
            sm.add_permission_role(role, pv)
            sm.add_permission_role(admin, pv)  # Admin may do whatever any role may
        _add_missing_rules(role, spec.rules)


def _add_missing_rules(role: Any, rules: tuple[RuleSpec, ...]) -> None:
    """Give ``role`` the default record rules it has none for (admins' edits stay)."""
    s = session()
    have = set(s.scalars(select(RecordRule.model).where(RecordRule.role_id == role.id)))
    for rule in rules:
        if rule.model not in have:
            s.add(
                RecordRule(
                    role_id=role.id,
                    model=rule.model,
                    read_scope=rule.read,
                    write_scope=rule.write,
                    pool=rule.pool,
                )
            )
    s.commit()
