"""The Settings screen: every declared setting with its current value."""

from __future__ import annotations

from flask import current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import lazy_gettext as _l

from ..db import session
from .store import get_setting, set_setting


class SettingsView(BaseView):
    """``/settings/``: admins change settings; a bad value is refused with its key named."""

    route_base = "/settings"
    default_view = "list"
    method_permission_name = {"list": "list", "save": "edit"}

    @expose("/")
    @has_access
    def list(self):  # type: ignore[no-untyped-def]
        registry = current_app.extensions["crm"]
        rows = [
            {"spec": spec, "value": get_setting(key), "owner": registry.setting_owner[key]}
            for key, spec in sorted(registry.settings.items())
            if registry.is_enabled(registry.setting_owner[key])
        ]
        return self.render_template("crm/settings.html", rows=rows)

    @expose("/", methods=["POST"])
    @has_access
    def save(self):  # type: ignore[no-untyped-def]
        registry = current_app.extensions["crm"]
        try:
            for key, spec in registry.settings.items():
                if spec.type == "bool":
                    set_setting(key, request.form.get(key) == "on")
                elif key in request.form:
                    set_setting(key, request.form[key])
            session().commit()
        except ValueError as exc:
            session().rollback()
            flash(str(exc), "danger")
        else:
            flash(str(_l("Settings saved")), "success")
        return redirect(url_for("SettingsView.list"))
