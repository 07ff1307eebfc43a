"""Administration → 选项列表: picklists and their values, and picklist columns on screens."""

from __future__ import annotations

from typing import Any

from flask_appbuilder.fieldwidgets import Select2Widget
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from wtforms import SelectField

from ..web.crud import CrmInterface, CrmModelView
from . import picklists
from .picklists import Picklist, PicklistValue

LABELS = {
    "picklist": _l("Picklist"),
    "name": _l("Key"),
    "value": _l("Stored value"),
    "label_zh": _l("Label (Chinese)"),
    "label_en": _l("Label (English)"),
    "color": _l("Colour"),
    "position": _l("Position"),
    "active": _l("Active"),
    "owner": _l("Module"),
    "updated_at": _l("Changed"),
}
COLOURS = ["", "red", "orange", "green", "blue", "purple", "gray"]


def colour_badge(value: Any) -> Any:
    if not value:
        return ""
    return Markup(f'<span class="label crm-colour-{escape(value)}">{escape(value)}</span>')


class PicklistValueView(CrmModelView):
    """The values of picklists; "delete" deactivates a value, records keep it."""

    datamodel = CrmInterface(PicklistValue)
    route_base = "/picklistvalues"
    list_title = _l("Picklist values")
    show_title = add_title = edit_title = _l("Picklist value")
    label_columns = LABELS
    list_columns = ["picklist", "position", "value", "label_zh", "label_en", "color", "active"]
    add_columns = ["picklist", "value", "label_zh", "label_en", "color", "position", "active"]
    # The stored value never changes: records hold it.
    edit_columns = ["label_zh", "label_en", "color", "position", "active"]
    show_columns = [*add_columns, "updated_at"]
    search_columns = ["picklist", "value", "label_zh", "active"]
    base_order = ("position", "asc")
    formatters_columns = {"color": colour_badge}
    description_columns = {
        "value": _l("What records store; it cannot be changed later"),
        "active": _l("An inactive value is no longer offered; records keep it."),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "color": SelectField(
            LABELS["color"], choices=[(c, c) for c in COLOURS], widget=Select2Widget()
        )
    }

    def post_add(self, item: Any) -> None:
        picklists.forget()

    def post_update(self, item: Any) -> None:
        picklists.forget()


class PicklistView(CrmModelView):
    """Picklists (the lists modules declare); their values are edited below each."""

    datamodel = CrmInterface(Picklist)
    route_base = "/picklists"
    list_title = _l("Picklists")
    show_title = edit_title = _l("Picklist")
    label_columns = LABELS
    list_columns = ["label_zh", "label_en", "name", "owner"]
    show_columns = ["name", "label_zh", "label_en", "owner", "updated_at"]
    edit_columns = ["label_zh", "label_en"]
    search_columns = ["name", "label_zh", "owner"]
    base_order = ("name", "asc")
    base_permissions = ["can_list", "can_show", "can_edit"]  # modules declare the lists
    related_views = [PicklistValueView]
