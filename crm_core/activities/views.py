"""Screens and API for follow-ups (跟进记录), notes and tasks."""

from __future__ import annotations

from flask_appbuilder.fieldwidgets import DateTimePickerWidget, Select2Widget
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from wtforms import BooleanField, DateTimeField, SelectField
from wtforms.validators import Optional

from ..db import utcnow
from ..org.display import display_user
from ..web.crud import CrmInterface, CrmModelRestApi, CrmModelView, default_owner
from ..web.display import display_datetime
from .models import ACTIVITY_KINDS, Activity

KIND_LABELS = {
    "call": _l("Call"),
    "visit": _l("Visit"),
    "wechat": _l("WeChat"),
    "email": lazy_pgettext("follow-up kind", "E-mail"),  # the field "E-mail" is 邮箱
    "meeting": _l("Meeting"),
    "note": _l("Note"),
    "task": _l("Task"),
}


def _form_fields() -> dict[str, object]:
    """Form fields that differ from FAB's defaults: kinds by label, "when" defaulting to now,
    and a "done" box that may stay empty (an open follow-up)."""
    return {
        "kind": _kind_field(),
        "occurred_at": DateTimeField(
            _l("When"),
            format="%Y-%m-%d %H:%M:%S",
            default=utcnow,
            validators=[Optional()],
            widget=DateTimePickerWidget(),
        ),
        "done": BooleanField(_l("Done")),
    }


def _kind_field() -> SelectField:
    return SelectField(
        _l("Kind"),
        choices=[(k, KIND_LABELS[k]) for k in ACTIVITY_KINDS],
        default="call",
        widget=Select2Widget(),
    )


class ActivityView(CrmModelView):
    """Follow-ups on customers."""

    datamodel = CrmInterface(Activity)
    route_base = "/activities"
    list_title = _l("Follow-ups")
    show_title = _l("Follow-up")
    add_title = _l("Add follow-up")
    edit_title = _l("Edit follow-up")
    label_columns = {
        "kind": _l("Kind"),
        "subject": _l("Subject"),
        "body": _l("Details"),
        "customer": _l("Customer"),
        "contact": _l("Contact"),
        "owner": _l("Owner"),
        "occurred_at": _l("When"),
        "due_at": _l("Due"),
        "done": _l("Done"),
    }
    _fields = ["kind", "subject", "body", "customer", "contact", "occurred_at", "due_at", "done"]
    add_columns = edit_columns = _fields
    show_columns = [*_fields, "owner"]
    list_columns = ["occurred_at", "kind", "subject", "customer", "owner"]
    search_columns = ["kind", "subject", "customer", "owner", "occurred_at", "done"]
    base_order = ("occurred_at", "desc")
    base_filters = [["active", FilterEqual, True]]
    add_form_extra_fields = _form_fields()
    edit_form_extra_fields = _form_fields()
    formatters_columns = {
        "kind": lambda k: KIND_LABELS.get(k, k),
        "owner": display_user,
        "occurred_at": display_datetime,
        "due_at": display_datetime,
    }

    def pre_add(self, item: Activity) -> None:
        default_owner(item)
        self.pre_update(item)

    def pre_update(self, item: Activity) -> None:
        if item.occurred_at is None:  # left empty: it happened now
            item.occurred_at = utcnow()


class ActivityApi(CrmModelRestApi):
    """``/api/v1/activity/``."""

    resource_name = "activity"
    datamodel = CrmInterface(Activity)
    _fields = [
        "kind",
        "subject",
        "body",
        "customer_id",
        "contact_id",
        "occurred_at",
        "due_at",
        "done",
        "ref_model",
        "ref_id",
        "custom",
    ]
    list_columns = ["id", *_fields, "owner_id", "updated_at", "version"]
    show_columns = ["id", *_fields, "owner_id", "active", "created_at", "updated_at", "version"]
    add_columns = edit_columns = _fields
    search_columns = ["customer_id", "kind", "owner_id", "occurred_at", "updated_at"]
    base_filters = [["active", FilterEqual, True]]
    base_order = ("id", "asc")

    def pre_add(self, item: Activity) -> None:
        default_owner(item)
