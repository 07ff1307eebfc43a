"""Custom fields in generated screens: form fields, list and show values, search inputs.

Each active definition becomes a WTForms field named ``custom__<name>`` on the add and edit
forms; it is checked with the same rules as every other write (:func:`fields.clean_value`), so
a bad value is shown under the field in the user's language. The form's values are merged into
the record's custom column when the form fills the record (:func:`form_class`).
"""

from __future__ import annotations

from typing import Any

from flask import g
from flask_appbuilder.fieldwidgets import (
    BS3TextAreaFieldWidget,
    BS3TextFieldWidget,
    DatePickerWidget,
    DateTimePickerWidget,
    Select2ManyWidget,
    Select2Widget,
)
from flask_babel import gettext as _
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import (
    BooleanField,
    Field,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import Optional

from ..db import session
from ..security import masking
from . import picklists
from .fields import FieldDefinition, choice_pairs, clean_value, custom_column
from .live import PREFIX, Label, column_name, current


def _choices(defn: FieldDefinition, blank: bool, every: bool = False) -> list[tuple[str, str]]:
    pairs = choice_pairs(defn, every=every)
    return [("", ""), *pairs] if blank else pairs


def _user_choices() -> list[tuple[str, str]]:
    from flask_appbuilder.security.sqla.models import User

    from ..org.display import display_user

    users = session().scalars(select(User).where(User.active.is_(True)).order_by(User.username))
    return [("", ""), *((str(u.id), display_user(u)) for u in users)]


class CheckValue:
    """Form validator: the value passes the field's rules (required, kind, bounds, pattern);
    the message names the problem in the user's language."""

    def __init__(self, defn: FieldDefinition) -> None:
        self.defn = defn

    def __call__(self, form: Any, field: Any) -> None:
        raw = field.data
        if self.defn.kind == "customer" and isinstance(raw, str) and raw.strip():
            raw = _customer_id(raw.strip())
        empty = raw is None or raw == "" or raw == [] or raw is False
        if empty:
            if self.defn.required and self.defn.kind != "bool":
                raise ValidationError(_("This field is required."))
            return
        masked = self.defn.sensitive and isinstance(raw, str) and masking.STARS in raw
        if masked and masking.masked_for_user():
            if self._masked_form_of_stored(form, raw):
                return  # the masked value sent back keeps the stored one (``_populate_obj``)
            raise ValidationError(_("Enter the whole value, or leave the masked one."))
        if self.defn.picklist and raw == self._stored(form):
            return  # a value its picklist has since deactivated stays on the record
        try:
            field.data = clean_value(session(), self.defn, raw)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def _stored(self, form: Any) -> Any:
        model, pk = getattr(form, "_crm_model", None), getattr(form, "_id", None)
        item = session().get(model, pk) if model is not None and pk is not None else None
        return value_of(item, column_name(self.defn.name)) if item is not None else None

    def _masked_form_of_stored(self, form: Any, sent: str) -> bool:
        stored = self._stored(form)
        return masking.keeps_stored(masking.custom_kind(self.defn.kind), stored, sent)


def _customer_id(text: str) -> Any:
    """A customer typed as its id or its code."""
    from ..customers.models import Customer

    if text.isdigit():
        return text
    found = session().scalar(select(Customer.id).where(Customer.code == text.upper()))
    return found if found is not None else text


def form_field(defn: FieldDefinition) -> Field:
    """The WTForms field of ``defn``."""
    label = Label(defn)
    common: dict[str, Any] = {"description": defn.help or "", "validators": [CheckValue(defn)]}
    kind = defn.kind
    if kind == "long_text":
        return TextAreaField(label, widget=BS3TextAreaFieldWidget(), **common)
    if kind == "bool":
        return BooleanField(label, description=defn.help or "", validators=[Optional()])
    if kind == "choice" and defn.picklist:
        return PicklistSelectField(label, defn.picklist, widget=Select2Widget(), **common)
    if kind == "choice":
        return SelectField(
            label, choices=lambda: _choices(defn, blank=True), widget=Select2Widget(), **common
        )
    if kind == "multi_choice":  # a picklist's values are read when the form is made
        return SelectMultipleField(
            label,
            choices=lambda: _choices(defn, blank=False),
            widget=Select2ManyWidget(),
            **common,
        )
    if kind == "user":
        return SelectField(label, choices=_user_choices, widget=Select2Widget(), **common)  # type: ignore[arg-type]
    if kind == "date":
        return StringField(label, widget=DatePickerWidget(), **common)
    if kind == "datetime":
        return StringField(label, widget=DateTimePickerWidget(), **common)
    return StringField(label, widget=BS3TextFieldWidget(), **common)


def search_field(defn: FieldDefinition) -> Field:
    """The input a list's filter shows for ``defn``."""
    label = Label(defn)
    if defn.kind in ("choice", "multi_choice"):
        return SelectField(
            label, choices=lambda: _choices(defn, blank=False, every=True), widget=Select2Widget()
        )
    if defn.kind == "bool":
        choices = [("true", _("Yes")), ("false", _("No"))]
        return SelectField(label, choices=choices, widget=Select2Widget())
    if defn.kind == "user":
        return SelectField(label, choices=_user_choices, widget=Select2Widget())  # type: ignore[arg-type]
    if defn.kind == "date":
        return StringField(label, widget=DatePickerWidget())
    if defn.kind == "datetime":
        return StringField(label, widget=DateTimePickerWidget())
    return StringField(label, widget=BS3TextFieldWidget())


def form_class(base: type, defs: list[FieldDefinition], model: type) -> type:
    """``base`` (a FAB form class of ``model``) with a field per definition, filling and
    showing them from the record's custom column."""
    attrs: dict[str, Any] = {column_name(d.name): form_field(d) for d in defs}
    attrs["_crm_custom_defs"] = list(defs)
    attrs["_crm_model"] = model
    attrs["populate_obj"] = _populate_obj
    return type(base.__name__, (base,), attrs)


def _populate_obj(form: Any, obj: Any) -> None:
    """FAB's ``populate_obj`` for the model's own fields; the custom ones are merged into the
    record's custom column (fields the form does not show keep their values)."""
    column = custom_column(type(obj))
    custom_names = {column_name(d.name): d for d in form._crm_custom_defs}
    for name, field in form._fields.items():
        if name not in custom_names:
            field.populate_obj(obj, name)
    if column is None:
        return
    values = dict(getattr(obj, column) or {})
    for name, defn in custom_names.items():
        if name not in form._fields:
            continue
        data = form._fields[name].data
        kind = masking.custom_kind(defn.kind)
        if defn.sensitive and masking.keeps_stored(kind, values.get(defn.name), data):
            continue  # the masked value sent back: keep the stored one
        if data is None or data == "" or data == [] or (defn.kind == "bool" and data is False):
            if defn.kind == "bool" and defn.name in values:
                values[defn.name] = False
            else:
                values.pop(defn.name, None)
        else:
            values[defn.name] = data
    setattr(obj, column, values or None)


def prefill(form: Any, item: Any) -> None:
    """Show the record's custom values in an edit form (masked where the user may not read
    them in full)."""
    column = custom_column(type(item))
    if column is None:
        return
    values = getattr(item, column) or {}
    masked = masking.masked_for_user()
    for defn in getattr(form, "_crm_custom_defs", []):
        name = column_name(defn.name)
        if name not in form._fields:
            continue
        value = values.get(defn.name)
        if defn.sensitive and masked and isinstance(value, str):
            value = masking.mask(masking.custom_kind(defn.kind), value)
        elif defn.kind in ("integer", "user", "customer") and value is not None:
            value = str(value)
        form._fields[name].data = value


def display(defn: FieldDefinition) -> Any:
    """The list and show formatter of ``defn``'s values."""

    def show(value: Any) -> Any:
        if value is None or value == "" or value == []:
            return ""
        if defn.sensitive and masking.masked_for_user() and isinstance(value, str):
            return masking.mask(masking.custom_kind(defn.kind), value)
        labels = dict(_choices(defn, blank=False, every=True))
        if defn.kind == "choice":
            return labels.get(str(value), value)
        if defn.kind == "multi_choice" and isinstance(value, list):
            return "、".join(labels.get(str(v), str(v)) for v in value)
        if defn.kind == "bool":
            return _("Yes") if value else _("No")
        if defn.kind == "url":
            href = escape(value)
            return Markup(f'<a href="{href}" rel="noopener noreferrer">{href}</a>')
        if defn.kind == "phone":
            from ..customers.validation import display_phone

            return display_phone(value)
        if defn.kind in ("user", "customer"):
            return _record_name(defn.kind, value)
        return value

    return show


def _record_name(kind: str, pk: Any) -> str:
    from flask_appbuilder.security.sqla.models import User

    from ..customers.models import Customer
    from ..org.display import display_user

    target = User if kind == "user" else Customer
    names: dict[tuple[str, Any], str] = g.setdefault("_crm_record_names", {})
    if (kind, pk) in names:  # a list shows the same users on many rows: one query each
        return names[(kind, pk)]
    try:
        found = session().get(target, int(pk))
    except (TypeError, ValueError):
        return str(pk)
    name = str(pk) if found is None else display_user(found) if kind == "user" else found.name
    names[(kind, pk)] = str(name)
    return str(name)


def value_of(item: Any, column: str) -> Any:
    """The value a ``custom__…`` column of ``item`` holds."""
    custom = custom_column(type(item))
    values = (getattr(item, custom) if custom else None) or {}
    return values.get(column[len(PREFIX) :])


def shown_values(item: Any) -> list[tuple[str, Any]]:
    """``(label, shown value)`` of each active custom field of ``item`` that has a value, as
    this request's user may read it (for record pages such as the 360° page)."""
    out = []
    for defn in current(type(item)):
        value = value_of(item, column_name(defn.name))
        if value is None or value == "" or value == []:
            continue
        out.append((str(Label(defn)), display(defn)(value)))
    return out


class PicklistSelectField(SelectField):
    """A select of a picklist's active values, read when the form is shown. A record's stored
    value stays selectable even when it was deactivated (or predates the list), so saving the
    form never drops it; the write check refuses a *new* value that is not active."""

    def __init__(self, label: Any, picklist: str, **kwargs: Any) -> None:
        super().__init__(label, choices=[], validate_choice=False, **kwargs)
        self.picklist = picklist

    def iter_choices(self) -> Any:
        options = picklists.choices(session(), self.picklist, keep=self.data)
        if self.data and all(value != self.data for value, _label in options):
            options.append((self.data, self.data))
        for value, text in options:
            yield (value, text, value == (self.data or ""), {})


def picklist_field(name: str, label: Any) -> Field:
    """The form field of a column bound to picklist ``name``."""
    return PicklistSelectField(
        label, name, widget=Select2Widget(), filters=[lambda value: value or None]
    )


def picklist_formatter(name: str) -> Any:
    """Lists and show pages read a picklist column's label in the user's language."""
    return lambda value: "" if value is None else picklists.label(session(), name, value)


def choice_label(obj: Any, column: str) -> Any:
    """The label of ``obj.column`` when the column is bound to a picklist, else its value
    (for record pages such as the 360° page)."""
    value = getattr(obj, column)
    name = picklists.bound_columns(type(obj)).get(column)
    return picklists.label(session(), name, value) if name else value
