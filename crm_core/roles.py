"""Syncing permissions and default roles; run by ``crm upgrade``, never by web workers."""

from __future__ import annotations

from flask import current_app


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
    for _owner, spec in registry.collect_specs("register_roles"):
        role = sm.add_role(spec.name)
        for permission, view in spec.permissions:
            pv = sm.add_permission_view_menu(permission, view)
            sm.add_permission_role(role, pv)
