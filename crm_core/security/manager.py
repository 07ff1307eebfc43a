"""The CRM's security manager: Flask-AppBuilder's, with permission checks answered per request
and login protection.

Flask-AppBuilder runs one query per permission check, and a page checks dozens (every menu
entry, every button). Here the signed-in user's permissions are read once per request and the
checks are answered from that set.

Every password login (the login form and ``/api/v1/security/login``) goes through
:meth:`CrmSecurityManager.auth_user_db`, which refuses blocked addresses and locked accounts
before the password is checked and counts wrong passwords (:mod:`crm_core.security.lockout`).
"""

from __future__ import annotations

import logging
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
from sqlalchemy.exc import SQLAlchemyError

from . import api_keys
from .lockout import LoginGuard
from .login_views import (
    CrmAuthDBView,
    CrmResetMyPasswordView,
    CrmResetPasswordView,
    CrmSecurityApi,
    CrmUserDBModelView,
)
from .role_views import CrmRoleModelView

log = logging.getLogger(__name__)


class CrmSecurityManager(SecurityManager):
    """Same rules as Flask-AppBuilder's; fewer queries; logins protected against guessing."""

    authdbview = CrmAuthDBView
    security_api = CrmSecurityApi
    userdbmodelview = CrmUserDBModelView
    rolemodelview = CrmRoleModelView
    resetmypasswordview = CrmResetMyPasswordView
    resetpasswordview = CrmResetPasswordView

    def auth_user_db(self, username: str, password: str) -> Any:
        """The user when ``password`` is right and neither the account nor the client's address
        is blocked; else ``None`` (the refusal, if any, is in
        :func:`crm_core.security.lockout.current_refusal`)."""
        if not username or "\x00" in username:  # PostgreSQL refuses NUL in any string
            return None
        try:
            guard = LoginGuard(self, username)
            if guard.refusal() is not None:
                return None
        except SQLAlchemyError:
            log.exception("login protection could not be checked; the login is refused")
            self.session.rollback()
            return None
        user = super().auth_user_db(username, password)
        try:
            if user:
                guard.succeeded()
            else:
                guard.failed()
        except SQLAlchemyError:
            log.exception("a login could not be counted")
            self.session.rollback()
        return user

    @staticmethod
    def extract_api_key_from_request() -> str | None:
        """``Authorization: ApiKey <key>``, ``X-API-Key: <key>`` or a bearer CRM key."""
        return api_keys.key_from_request()

    def validate_api_key(self, api_key_string: str) -> Any:
        """The user of a valid key; the request then has only the key's role."""
        return api_keys.authenticate(api_key_string)

    def _roles_of_request(self, user: Any) -> list[Any]:
        """The user's roles, or only the role of the API key the request came with."""
        roles = list(self.get_user_roles(user))
        scope = api_keys.request_role()
        if scope is None:
            return roles
        return [r for r in roles if r.name == scope]

    def _request_permissions(self, user: Any) -> set[tuple[str, str]] | None:
        """``(permission, view)`` pairs of the user's database roles, once per request."""
        if not has_request_context():
            return None
        key = getattr(user, "id", None)
        cached = g.get("_crm_permissions")
        if cached is not None and cached[0] == key:
            return cached[1]  # type: ignore[no-any-return]
        role_ids = [r.id for r in self._roles_of_request(user) if r.name not in self.builtin_roles]
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
            for role in self._roles_of_request(user)
        ):
            return True
        return (permission_name, view_name) in pairs
