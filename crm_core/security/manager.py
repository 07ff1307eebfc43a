"""The CRM's security manager: Flask-AppBuilder's, with permission checks answered per request.

Flask-AppBuilder runs one query per permission check, and a page checks dozens (every menu
entry, every button). Here the signed-in user's permissions are read once per request and the
checks are answered from that set.
"""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.sqla.models import (
    Permission,
    PermissionView,
    ViewMenu,
    assoc_permissionview_role,
)
from sqlalchemy import select


class CrmSecurityManager(SecurityManager):
    """Same rules as Flask-AppBuilder's; fewer queries."""

    def _request_permissions(self, user: Any) -> set[tuple[str, str]] | None:
        """``(permission, view)`` pairs of the user's database roles, once per request."""
        if not has_request_context():
            return None
        key = getattr(user, "id", None)
        cached = g.get("_crm_permissions")
        if cached is not None and cached[0] == key:
            return cached[1]  # type: ignore[no-any-return]
        role_ids = [r.id for r in self.get_user_roles(user) if r.name not in self.builtin_roles]
        pairs: set[tuple[str, str]] = set()
        if role_ids:
            query = (
                select(Permission.name, ViewMenu.name)
                .select_from(PermissionView)
                .join(Permission, PermissionView.permission_id == Permission.id)
                .join(ViewMenu, PermissionView.view_menu_id == ViewMenu.id)
                .join(
                    assoc_permissionview_role,
                    assoc_permissionview_role.c.permission_view_id == PermissionView.id,
                )
                .where(assoc_permissionview_role.c.role_id.in_(role_ids))
            )
            pairs = {(perm, view) for perm, view in self.session.execute(query)}
        g._crm_permissions = (key, pairs)
        return pairs

    def _has_view_access(self, user: object, permission_name: str, view_name: str) -> bool:
        pairs = self._request_permissions(user)
        if pairs is None:
            return bool(super()._has_view_access(user, permission_name, view_name))
        if any(
            role.name in self.builtin_roles
            and self._has_access_builtin_roles(role, permission_name, view_name)
            for role in self.get_user_roles(user)
        ):
            return True
        return (permission_name, view_name) in pairs
