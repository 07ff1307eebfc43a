"""The admin's Modules page: each plugin's version, phase, state, dependencies and errors."""

from __future__ import annotations

from flask import current_app, flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import lazy_gettext as _l

from ..data.quality_figures import enable_warning, readiness
from . import lifecycle


class ModulesView(BaseView):
    """``/modules/``: enable and disable plugins without a restart."""

    route_base = "/modules"
    default_view = "list"
    method_permission_name = {"list": "list", "enable": "edit", "disable": "edit"}

    @expose("/")
    @has_access
    def list(self):  # type: ignore[no-untyped-def]
        registry = current_app.extensions["crm"]
        errors = registry.errors()
        rows = []
        for info in registry.ordered():
            manifest = info.manifest
            error = errors.get(info.name)
            rows.append(
                {
                    "name": info.name,
                    "title": info.title,
                    "version": info.version,
                    "phase": manifest.phase if manifest else "",
                    "depends": ", ".join(
                        f"{k} {v}".strip()
                        for k, v in (manifest.depends if manifest else {}).items()
                    ),
                    "state": registry.state_of(info.name),
                    "source": info.source,
                    "error": error,
                    "broken": bool(info.error),
                    "description": manifest.description if manifest else "",
                }
            )
        gate = readiness() if any(r["phase"] == 2 for r in rows) else None
        return self.render_template("crm/modules.html", rows=rows, gate=gate)

    def _change(self, name: str, action: str):  # type: ignore[no-untyped-def]
        try:
            getattr(lifecycle, action)(name)
        except lifecycle.LifecycleError as exc:
            flash(str(exc), "danger")
        else:
            message = _l("Module enabled") if action == "enable" else _l("Module disabled")
            flash(f"{message}: {name}", "success")
        return redirect(url_for("ModulesView.list"))

    @expose("/<name>/enable", methods=["POST"])
    @has_access
    def enable(self, name: str):  # type: ignore[no-untyped-def]
        response = self._change(name, "enable")
        info = current_app.extensions["crm"].plugins.get(name)
        warning = enable_warning(info.manifest.phase if info and info.manifest else None)
        if warning and current_app.extensions["crm"].is_enabled(name):
            flash(warning, "warning")  # enabled all the same: the admin decides
        return response

    @expose("/<name>/disable", methods=["POST"])
    @has_access
    def disable(self, name: str):  # type: ignore[no-untyped-def]
        return self._change(name, "disable")
