"""The admin's audit log: a read-only list and detail screen, and a read-only REST API."""

from __future__ import annotations

from typing import Any

from flask_appbuilder import ModelView
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from markupsafe import Markup

from ..web.crud import CrmInterface, CrmModelRestApi
from ..web.display import display_datetime
from .audit import CHANNEL_LABELS, OPERATION_LABELS, AuditLog

_COLUMNS = [
    "occurred_at",
    "username",
    "channel",
    "ip",
    "model",
    "record_id",
    "operation",
]
_SEARCH = ["model", "record_id", "user", "username", "channel", "operation", "occurred_at"]
_LABELS = {
    "occurred_at": lazy_pgettext("audit entry", "When"),
    "user": _l("User"),
    "username": _l("User"),
    "channel": _l("Channel"),
    "ip": _l("IP address"),
    "model": _l("Record type"),
    "record_id": _l("Record id"),
    "operation": _l("Operation"),
    "changes": _l("Changes"),
}


def render_changes(changes: Any) -> Markup:
    """``{field: [old, new]}`` as a small table."""
    if not isinstance(changes, dict) or not changes:
        return Markup("")
    rows = Markup("").join(
        Markup("<tr><th>{}</th><td>{}</td><td>{}</td></tr>").format(
            field,
            "" if pair[0] is None else pair[0],
            "" if pair[1] is None else pair[1],
        )
        for field, pair in sorted(changes.items())
        if isinstance(pair, list | tuple) and len(pair) == 2
    )
    head = Markup("<tr><th>{}</th><th>{}</th><th>{}</th></tr>").format(
        _l("Field"), _l("Before"), _l("After")
    )
    return Markup('<table class="table table-condensed crm-audit-changes">{}{}</table>').format(
        head, rows
    )


class AuditLogView(ModelView):
    """Every audited write, newest first; entries can be searched and read, never changed."""

    datamodel = CrmInterface(AuditLog)
    route_base = "/auditlog"
    list_title = _l("Audit log")
    show_title = _l("Audit entry")
    base_permissions = ["can_list", "can_show"]
    label_columns = _LABELS
    list_columns = _COLUMNS
    show_columns = [*_COLUMNS, "changes"]
    search_columns = _SEARCH
    formatters_columns = {
        "changes": render_changes,
        "operation": lambda op: OPERATION_LABELS.get(op, op),
        "channel": lambda ch: CHANNEL_LABELS.get(ch, ch),
        "occurred_at": display_datetime,
    }
    base_order = ("id", "desc")


class AuditLogApi(CrmModelRestApi):
    """``/api/v1/auditlog/``: read and export the audit log (admins); no writes."""

    resource_name = "auditlog"
    datamodel = CrmInterface(AuditLog)
    base_permissions = ["can_get", "can_info"]
    include_route_methods = {"get_list", "get", "info"}
    list_columns = ["id", *_COLUMNS, "user_id", "changes"]
    show_columns = list_columns
    search_columns = _SEARCH
    order_columns = ["id", "occurred_at"]
    base_order = ("id", "desc")
    label_columns = _LABELS
