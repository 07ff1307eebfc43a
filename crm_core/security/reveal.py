"""Revealing one masked value: ``POST /sensitive/<Model>/<id>/<field>``, audited.

Users with ``can_reveal`` on "Sensitive fields" see a "Show" link beside a masked value
(:func:`sensitive_html`, a template global as ``crm_sensitive``). Following it answers the
stored value as JSON and writes an audit entry (operation ``reveal``, the field's name) for the
record, in the same transaction. Record rules apply: a record the user may not see is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import jsonify, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.exceptions import NotFound

from ..db import session
from . import audit, masking


def sensitive_models() -> dict[str, type]:
    """Every mapped model with sensitive fields, by class name."""
    from flask_appbuilder import Model

    return {
        m.class_.__name__: m.class_
        for m in Model.registry.mappers
        if masking.sensitive_fields(m.class_)
    }


def _display(kind: str, value: Any) -> str:
    if value in (None, ""):
        return ""
    if kind == "phone":
        from ..customers.validation import display_phone

        return display_phone(str(value))
    return str(value)


def sensitive_html(obj: Any, field: str, display: Callable[[Any], Any] | None = None) -> Markup:
    """``obj.field`` for this request's user: as stored (through ``display``), or masked with
    a "Show" link for users who may reveal it."""
    value = getattr(obj, field)
    kind = masking.sensitive_fields(type(obj)).get(field)
    if kind is None or not masking.masked_for_user():
        shown = display(value) if display else _display(kind or "text", value)
        return Markup("{}").format(shown if shown is not None else "")
    if value in (None, ""):
        return Markup("")
    html = Markup('<span class="crm-masked">{}</span>').format(masking.mask(kind, value))
    if masking.may_reveal():
        url = url_for("RevealView.reveal", model=type(obj).__name__, pk=obj.id, field=field)
        html += Markup(' <a href="#" class="crm-reveal" data-url="{}">{}</a>').format(
            url, _("Show")
        )
    return html


class RevealView(BaseView):
    """The stored value of one sensitive field of one record, for users who may reveal it."""

    route_base = "/sensitive"
    class_permission_name = masking.SENSITIVE_VIEW
    method_permission_name = {"reveal": "reveal"}
    default_view = "reveal"

    @expose("/<model>/<int:pk>/<field>", methods=["POST"])
    @has_access
    def reveal(self, model: str, pk: int, field: str):  # type: ignore[no-untyped-def]
        cls = sensitive_models().get(model)
        kind = masking.sensitive_fields(cls).get(field) if cls else None
        item = session().get(cls, pk) if cls and kind else None
        if item is None or kind is None:
            raise NotFound()
        value = getattr(item, field)
        name = getattr(cls, "__crm_event__", model.lower())
        audit.write_entry(session(), name, pk, "reveal", {field: [None, None]})
        session().commit()
        return jsonify(value=value, display=_display(kind, value))
