"""The admin's audit log: a read-only list and detail screen, and a read-only REST API."""

from __future__ import annotations

from typing import Any

from flask_appbuilder import ModelView
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from markupsafe import Markup
from wtforms import SelectField
from wtforms.validators import DataRequired

from ..web.crud import CrmInterface, CrmModelRestApi
from ..web.display import display_datetime
from .audit import CHANNEL_LABELS, OPERATION_LABELS, AuditLog
from .encrypted_copies import reveal_changes
from .models import ANY_MODEL, SCOPE_LABELS, SCOPES, RecordRule
from .names import audited_type_label

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
    "plain_changes": _l("Changes"),
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
    show_columns = [*_COLUMNS, "plain_changes"]  # encrypted custom values read in plain
    search_columns = _SEARCH
    formatters_columns = {
        "plain_changes": render_changes,
        "operation": lambda op: OPERATION_LABELS.get(op, op),
        "channel": lambda ch: CHANNEL_LABELS.get(ch, ch),
        "occurred_at": display_datetime,
        "model": audited_type_label,
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

    def pre_get(self, data: dict[str, Any]) -> None:
        """An entry's encrypted custom values, read in plain for the admin."""
        self._reveal(data.get("result"))

    def pre_get_list(self, data: dict[str, Any]) -> None:
        for row in data.get("result") or []:
            self._reveal(row)

    @staticmethod
    def _reveal(row: Any) -> None:
        if isinstance(row, dict) and "changes" in row and "model" in row:
            row["changes"] = reveal_changes(row["model"], row["changes"])


def _choice(choices: Any, label: Any) -> SelectField:
    return SelectField(label, choices=choices, validators=[DataRequired()], widget=Select2Widget())


def record_type_label(name: str) -> str:
    """A ruled model's name as users read it (its ``__crm_label__``), ``*`` as "every other"."""
    from .rules import ruled_models

    if name == ANY_MODEL:
        return str(_l("Every other record type"))
    cls = ruled_models().get(name)
    return str(getattr(cls, "__crm_label__", name))


def _model_choices() -> list[tuple[str, str]]:
    from .rules import ruled_models

    names = sorted(ruled_models())
    return [(n, record_type_label(n)) for n in (ANY_MODEL, *names)]


class RecordRuleView(ModelView):
    """Per role and record type: which records its users read and write, and the pool."""

    datamodel = CrmInterface(RecordRule)
    route_base = "/recordrules"
    list_title = _l("Record rules")
    show_title = add_title = edit_title = _l("Record rule")
    label_columns = {
        "role": _l("Role"),
        "model": _l("Record type"),
        "read_scope": _l("May read"),
        "write_scope": _l("May change"),
        "pool": _l("Sees the shared pool"),
        "updated_at": _l("Changed"),
    }
    list_columns = ["role", "model", "read_scope", "write_scope", "pool", "updated_at"]
    add_columns = edit_columns = show_columns = [
        "role",
        "model",
        "read_scope",
        "write_scope",
        "pool",
    ]
    search_columns = ["role", "model", "read_scope", "write_scope"]
    order_columns = ["model", "updated_at"]
    base_order = ("role_id", "asc")
    formatters_columns = {
        "read_scope": lambda s: SCOPE_LABELS.get(s, s),
        "write_scope": lambda s: SCOPE_LABELS.get(s, s),
        "model": record_type_label,
        "updated_at": display_datetime,
    }
    scope_choices = [(s, SCOPE_LABELS[s]) for s in SCOPES]

    def _fields(self) -> dict[str, Any]:
        return {
            "model": _choice(_model_choices(), _l("Record type")),
            "read_scope": _choice(self.scope_choices, _l("May read")),
            "write_scope": _choice(self.scope_choices, _l("May change")),
        }

    def _init_forms(self) -> None:
        self.add_form_extra_fields = self.edit_form_extra_fields = self._fields()
        super()._init_forms()
