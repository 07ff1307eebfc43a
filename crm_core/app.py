"""The app factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_appbuilder import AppBuilder
from flask_appbuilder.models.sqla.base import SQLA
from flask_wtf.csrf import CSRFProtect

from . import __version__
from .activities import hooks as activity_hooks
from .config import PACKAGE_DIR, default_config
from .customers import hooks as customer_hooks
from .data import export_hooks, merge_hooks, quality_hooks
from .data.imports import hooks as import_hooks
from .db import configure_engine
from .events import outbox
from .lowcode import duplicates, live, picklists, validation
from .lowcode import fields as custom_fields
from .lowcode import forms as custom_forms
from .lowcode import hooks as lowcode_hooks
from .org import hooks as org_hooks
from .org.display import display_user
from .plugins import hooks as platform_hooks
from .plugins.discovery import discover
from .plugins.ordering import resolve
from .plugins.registry import CrmRegistry
from .privacy import hooks as privacy_hooks
from .security import (
    admin_audit,
    audit,
    auth_hooks,
    encryption,
    encryption_hooks,
    names,
    reveal,
    rules,
)
from .security import headers as security_headers
from .web import errors, gating, openapi
from .workflow.approvals import hooks as approval_hooks
from .workflow.assignment import hooks as assignment_hooks
from .workflow.automation import hooks as automation_hooks
from .workflow.notifications import hooks as notification_hooks

log = logging.getLogger(__name__)

CORE_PARTS = {
    "customers": customer_hooks,
    "activities": activity_hooks,
    "privacy": privacy_hooks,
    "org": org_hooks,
    "lowcode": lowcode_hooks,
    "platform": platform_hooks,
    "authentication": auth_hooks,
    "encryption": encryption_hooks,
    "merge": merge_hooks,
    "imports": import_hooks,
    "quality": quality_hooks,
    "export": export_hooks,
    "notifications": notification_hooks,
    "assignment": assignment_hooks,
    "approvals": approval_hooks,
    "automation": automation_hooks,
}


class StrictPluginError(RuntimeError):
    """Raised at start-up when ``CRM_STRICT_PLUGINS=1`` and a plugin cannot be loaded."""


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build a CRM app: configuration, database, admin, every plugin's screens and APIs.

    ``config`` overrides the defaults and the ``CRM_*`` environment. Plugins are discovered
    from the ``crm.plugins`` entry points and the hooks directory; one that fails to load is
    recorded with its error (see the Modules page) and the app starts without it, unless
    ``CRM_STRICT_PLUGINS`` is set.
    """
    app = Flask(
        "crm_core",
        template_folder=str(PACKAGE_DIR / "web" / "templates"),
        static_folder=str(PACKAGE_DIR / "web" / "static"),
        static_url_path="/crm-static",
    )
    app.config.update(default_config())
    app.config.update(config or {})
    if str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith(("mysql", "mariadb")):
        # MariaDB defaults to REPEATABLE READ, where a long-lived session keeps reading the
        # snapshot of its first query; the CRM expects what PostgreSQL gives by default.
        options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        options.setdefault("isolation_level", "READ COMMITTED")

    registry = CrmRegistry()
    app.extensions["crm"] = registry
    for part, module in CORE_PARTS.items():
        registry.register_core(module, part)
    only = app.config.get("CRM_PLUGINS")
    only_set = {n.strip() for n in only.split(",") if n.strip()} if isinstance(only, str) else None
    for info in resolve(discover(app.config.get("CRM_HOOKS_DIR"), only_set), __version__):
        registry.register_plugin(info)
    broken = [p for p in registry.ordered() if p.error]
    if broken and app.config.get("CRM_STRICT_PLUGINS"):
        raise StrictPluginError("; ".join(f"{p.name}: {p.error}" for p in broken))
    for info in broken:
        log.error("plugin %s is not loaded: %s", info.name, info.error)

    with app.app_context():
        db = SQLA()
        db.init_app(app)
        configure_engine(db.engine)
        app.extensions["crm_db"] = db
        outbox.install(db.session)  # domain events and audit entries of every write
        audit.install(db.session)  # the audit log is append-only
        admin_audit.install(db.session)  # logins, roles and settings made, changed or deleted
        rules.install()  # record rules on every query and write of a user's request
        custom_fields.install()  # custom field values checked on every write
        picklists.install()  # picklist columns checked on every write
        validation.install()  # admins' validation rules, after the values are normalised
        duplicates.install()  # and their duplicate rules
        encryption.install(app)  # encrypted custom fields, after their checks
        CSRFProtect(app)  # before the APIs register, so they are exempted (they use JWT)
        appbuilder = AppBuilder(update_perms=False)
        appbuilder.init_app(app, db.session)
        openapi.register(appbuilder)
        _register_specs(app, appbuilder, registry)
        live.install(app, appbuilder.baseviews)  # custom fields live, without a restart
        gating.install(app)
        app.jinja_env.globals["crm_sensitive"] = reveal.sensitive_html
        app.jinja_env.globals["crm_display_user"] = display_user
        app.jinja_env.globals["crm_custom_values"] = custom_forms.shown_values
        app.jinja_env.globals["crm_choice"] = custom_forms.choice_label
        app.jinja_env.filters["role_label"] = names.role_label
        names.install()  # roles and permissions read in the user's language
        errors.install(app)
        security_headers.install(app)  # cookie flags, CSP and other headers on every response
        _install_after_request_dispatch(app)
        # Each implementation on its own: a plugin that raises here is shown with its error
        # on the Modules page instead of stopping the app.
        list(registry.collect("app_configured", only_enabled=False, app=app))
    return app


def _register_specs(app: Flask, appbuilder: AppBuilder, registry: CrmRegistry) -> None:
    """Register what every loaded plugin declares, whatever its state.

    Views cannot be added once the app serves requests, so a plugin that is not installed or
    not enabled yet has its screens, APIs, menu entries, panels and jobs registered too, and
    gated at run time by its stored state (404, hidden). This is also what lets ``crm upgrade``
    create the permissions of a plugin it installs in the same run.
    """
    list(registry.collect_specs("register_models"))  # importing the models is what counts

    for owner, spec in registry.collect_specs("register_settings"):
        registry.settings[spec.key] = spec
        registry.setting_owner[spec.key] = owner

    def shown(owner: str):  # type: ignore[no-untyped-def]
        return lambda: registry.is_enabled(owner)

    for owner, spec in registry.collect_specs("register_views"):
        try:
            if spec.category:
                view = appbuilder.add_view(
                    spec.view,
                    spec.name,
                    label=spec.label or spec.name,
                    icon=spec.icon,
                    category=spec.category,
                    category_label=spec.category_label or spec.category,
                    category_icon=spec.category_icon,
                    menu_cond=shown(owner),
                )
            else:
                view = appbuilder.add_view_no_menu(spec.view)
            registry.owner_of_endpoint[view.endpoint] = owner
        except Exception as exc:  # noqa: BLE001 - a plugin's broken view is its own problem
            registry.record_error(owner, f"register_views: {exc!r}")
    for owner, spec in registry.collect_specs("register_apis"):
        try:
            api = appbuilder.add_api(spec.api)
            registry.owner_of_endpoint[api.endpoint] = owner
        except Exception as exc:  # noqa: BLE001
            registry.record_error(owner, f"register_apis: {exc!r}")
    for owner, spec in registry.collect_specs("register_menu"):
        appbuilder.add_link(
            spec.name,
            href=spec.href,
            label=spec.label or spec.name,
            category=spec.category,
            icon=spec.icon,
            cond=shown(owner),
        )
    for owner, spec in registry.collect_specs("register_jobs"):
        registry.jobs.append((owner, spec))  # the runner skips jobs of disabled plugins
    for owner, spec in registry.collect_specs("register_customer_panels"):
        registry.panels.append((owner, spec))  # shown for enabled plugins only
    for owner, command in registry.collect_specs("register_commands"):
        registry.commands.append((owner, command))
    registry.event_types = {
        spec.name: (owner, spec) for owner, spec in registry.collect_specs("register_event_types")
    }


def _install_after_request_dispatch(app: Flask) -> None:
    """Deliver the events a request committed, after its transaction, isolated from it."""
    from flask import g
    from sqlalchemy import inspect

    from .events.dispatch import dispatch_pending
    from .events.outbox import NEW_EVENTS_KEY

    @app.after_request
    def _dispatch(response):  # type: ignore[no-untyped-def]
        s = app.extensions["crm_db"].session
        rows = s.info.pop(NEW_EVENTS_KEY, None)
        if rows:
            ids = [key[0] for key in (inspect(r).identity for r in rows) if key]
            if ids:
                try:
                    dispatch_pending(event_ids=ids)
                except Exception:  # noqa: BLE001 - the user's write is already committed
                    log.exception("event dispatch failed; the scheduler will retry")
        app.extensions["crm"].save_request_errors()
        g.pop("crm_plugin_states", None)
        return response
