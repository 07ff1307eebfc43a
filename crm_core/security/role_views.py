"""The roles screen, showing roles and permissions by their labels."""

from __future__ import annotations

from flask_appbuilder.security.views import RoleModelView
from flask_appbuilder.widgets import ListWidget, ShowWidget
from flask_babel import lazy_gettext as _l

from .names import permissions_html, role_label


class CrmRoleModelView(RoleModelView):
    """Flask-AppBuilder's roles screen with the standard list and show widgets, which apply
    formatters: a role by its label, its permissions folded and grouped by screen."""

    class_permission_name = "RoleModelView"  # the permissions roles already have
    list_widget = ListWidget
    show_widget = ShowWidget
    label_columns = {**RoleModelView.label_columns, "user": _l("Users")}
    search_columns = ["name", "permissions", "user"]
    formatters_columns = {"name": role_label, "permissions": permissions_html}
