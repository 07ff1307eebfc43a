"""Exports of lists (CSV, XLSX), registered through the same hooks as any plugin."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from ..hookimpl import hookimpl
from ..specs import RoleSpec, SettingSpec, ViewSpec
from .export import DEFAULT_MAX_ROWS, MAX_ROWS_SETTING
from .export_views import PERMISSION, ListExportView, add_permission, export_links


@hookimpl
def register_views() -> list[ViewSpec]:
    return [ViewSpec(ListExportView, "List export", _l("Export"))]


@hookimpl
def register_settings() -> list[SettingSpec]:
    return [
        SettingSpec(
            MAX_ROWS_SETTING,
            DEFAULT_MAX_ROWS,
            "int",
            label=_l("Most records one export of a list may hold"),
            help=_l("A bigger list is refused with a request to narrow it with a filter."),
        )
    ]


def _export(*views: str) -> tuple[tuple[str, str], ...]:
    return tuple((PERMISSION, v) for v in views)


@hookimpl
def register_roles() -> list[RoleSpec]:
    """Who exports by default: sales managers their team's customers, contacts, follow-ups
    and the shared pool; reps their own customers, contacts and follow-ups (record rules
    decide which records, as on the lists). Admin may export every list; admins grant
    ``can_export`` on other screens to other roles."""
    rep = _export("CustomerView", "ContactView", "ActivityView")
    return [
        RoleSpec("Sales Manager", rep + _export("CustomerPoolView")),
        RoleSpec("Sales Rep", rep),
    ]


@hookimpl
def app_configured(app: Flask) -> None:
    """Every list screen gets its ``can_export`` permission, and the list template its
    export menu (``crm_export_links``)."""
    add_permission(app.appbuilder)  # type: ignore[attr-defined]
    app.jinja_env.globals["crm_export_links"] = export_links
