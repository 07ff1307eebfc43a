"""Administration → Custom fields: the screen where admins define fields."""

from __future__ import annotations

import re
from typing import Any

from flask import flash
from flask_appbuilder import ModelView
from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget, Select2Widget
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import (
    BooleanField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import DataRequired, Optional

from ..db import session
from ..web.crud import CrmInterface
from ..web.display import display_datetime
from .fields import KINDS, NAME, FieldDefinition, clean_value, custom_column

LABELS = {
    "model": _l("Record type"),
    "name": _l("Key"),
    "kind": _l("Field type"),
    "label_zh": _l("Label (Chinese)"),
    "label_en": _l("Label (English)"),
    "help": _l("Help text"),
    "required": _l("Required"),
    "default": _l("Default value"),
    "min_value": _l("Minimum"),
    "max_value": _l("Maximum"),
    "max_length": _l("Maximum length"),
    "pattern": _l("Pattern (regular expression)"),
    "choices": _l("Choices"),
    "picklist": _l("Picklist"),
    "unique": _l("Unique"),
    "sensitive": _l("Sensitive (masked)"),
    "searchable": _l("Searchable"),
    "encrypted": _l("Encrypted at rest"),
    "position": _l("Position"),
    "active": _l("Active"),
    "notes": _l("Notes"),
    "updated_at": _l("Changed"),
}


def model_choices() -> list[tuple[str, str]]:
    """Models that take custom fields, by their labels."""
    from flask_appbuilder import Model

    found = [
        (m.class_.__name__, str(getattr(m.class_, "__crm_label__", m.class_.__name__)))
        for m in Model.registry.mappers
        if custom_column(m.class_)
    ]
    return sorted(found, key=lambda pair: pair[1])


def parse_choices(text: str) -> list[dict[str, str]]:
    """Lines ``value|label`` (or just ``value``) as ``[{"value", "label"}]``."""
    out = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        value, _sep, label = line.partition("|")
        out.append({"value": value.strip(), "label": (label or value).strip()})
    return out


def choices_text(choices: Any) -> str:
    return "\n".join(
        f"{c['value']}|{c['label']}" if isinstance(c, dict) else str(c) for c in (choices or [])
    )


class KeyIsFree:
    """The key is a lower-case identifier and not taken on the same record type."""

    def __call__(self, form: Any, field: Any) -> None:
        if not NAME.match(field.data or ""):
            raise ValidationError(_("Use a-z, 0-9 and _, starting with a letter (max. 40)."))
        query = select(FieldDefinition.id).where(
            FieldDefinition.model == form.model.data, FieldDefinition.name == field.data
        )
        pk = getattr(form, "_id", None)
        if pk is not None:
            query = query.where(FieldDefinition.id != int(pk))
        if session().scalar(query) is not None:
            raise ValidationError(_("This key is already used on this record type."))


def _pattern_compiles(_form: Any, field: Any) -> None:
    try:
        re.compile(field.data or "")
    except re.error:
        raise ValidationError(_("Not a valid regular expression.")) from None


def _choices_given(form: Any, field: Any) -> None:
    choice = form.kind.data in ("choice", "multi_choice")
    if choice and not parse_choices(field.data) and not form.picklist.data:
        raise ValidationError(_("A choice field needs at least one choice, or a picklist."))


def _picklist_fits(form: Any, field: Any) -> None:
    if not field.data:
        return
    if form.kind.data not in ("choice", "multi_choice"):
        raise ValidationError(_("Only choice fields take their choices from a picklist."))
    if field.data not in dict(picklist_choices()):
        raise ValidationError(_("There is no picklist %(name)s.", name=field.data))


def picklist_choices() -> list[tuple[str, str]]:
    from .picklists import Picklist, label_in_language

    rows = session().scalars(select(Picklist).order_by(Picklist.name))
    return [
        ("", ""),
        *((p.name, f"{label_in_language(p.label_zh, p.label_en)} ({p.name})") for p in rows),
    ]


def _may_encrypt(form: Any, field: Any) -> None:
    """Only text-like fields, and only with a key configured, can be encrypted."""
    if not field.data:
        return
    from ..security.encryption import current_state, encryption_errors

    problems = encryption_errors(form.kind.data, current_state().keyring())
    if problems:
        raise ValidationError(problems[0])


def _tell_about_stored_values(item: FieldDefinition) -> None:
    """After a change of the encryption mark: the stored values follow in the background."""
    if not item.encryption_pending:
        return
    zh = str(get_locale() or "zh").startswith("zh")
    label = item.label_zh if zh else (item.label_en or item.label_zh)
    if item.encrypted:
        message = _(
            "The stored values of %(field)s are being encrypted in the background (job "
            "core.encryption_sync, every minute).",
            field=label,
        )
    else:
        message = _(
            "The stored values of %(field)s are being decrypted in the background (job "
            "core.encryption_sync, every minute).",
            field=label,
        )
    flash(message, "info")


class FieldDefinitionView(ModelView):
    """Custom fields per record type; deactivating a field keeps its stored values."""

    datamodel = CrmInterface(FieldDefinition)
    route_base = "/customfields"
    list_title = _l("Custom fields")
    show_title = add_title = edit_title = _l("Custom field")
    label_columns = LABELS
    list_columns = ["model", "position", "name", "label_zh", "kind", "required", "active"]
    _form = [
        "model",
        "name",
        "kind",
        "label_zh",
        "label_en",
        "help",
        "required",
        "default",
        "min_value",
        "max_value",
        "max_length",
        "pattern",
        "choices",
        "picklist",
        "unique",
        "sensitive",
        "searchable",
        "encrypted",
        "position",
        "active",
        "notes",
    ]
    add_columns = edit_columns = _form
    show_columns = [*_form, "updated_at"]
    search_columns = ["model", "name", "label_zh", "kind", "active"]
    base_order = ("model", "asc")
    description_columns = {
        "name": _l("How the field is stored and named in the API, e.g. wechat_id"),
        "choices": _l("One choice per line: value|label, e.g. A|A 级客户"),
        "picklist": _l(
            "Or take the choices from a picklist, kept in one place for every field that uses it"
        ),
        "active": _l("An inactive field is hidden; its stored values are kept."),
        "encrypted": _l(
            "Stored encrypted (text, phone, e-mail and web address fields); such a field can be"
            " searched by its exact value only, and lists cannot sort by it."
        ),
    }
    formatters_columns = {
        "kind": lambda k: KINDS.get(k, k),
        "model": lambda m: dict(model_choices()).get(m, m),
        "choices": choices_text,
        "updated_at": display_datetime,
    }

    def _init_forms(self) -> None:
        fields = {
            "model": SelectField(
                LABELS["model"],
                choices=model_choices,  # type: ignore[arg-type]
                validators=[DataRequired()],
                widget=Select2Widget(),
            ),
            "name": StringField(LABELS["name"], validators=[DataRequired(), KeyIsFree()]),
            "kind": SelectField(
                LABELS["kind"],
                choices=list(KINDS.items()),
                validators=[DataRequired()],
                widget=Select2Widget(),
            ),
            "default": StringField(LABELS["default"], validators=[Optional()]),
            "pattern": StringField(LABELS["pattern"], validators=[Optional(), _pattern_compiles]),
            "choices": TextAreaField(
                LABELS["choices"], validators=[_choices_given], widget=BS3TextAreaFieldWidget()
            ),
            "picklist": SelectField(
                LABELS["picklist"],
                choices=picklist_choices,  # type: ignore[arg-type]
                validators=[_picklist_fits],
                widget=Select2Widget(),
                filters=[lambda value: value or None],
                validate_choice=False,  # checked by _picklist_fits, blank allowed
            ),
            "position": IntegerField(LABELS["position"], default=100, validators=[Optional()]),
            # Boxes left empty mean "no" (FAB would make the non-null columns required).
            **{
                flag: BooleanField(LABELS[flag], default=flag == "active")
                for flag in ("required", "unique", "sensitive", "searchable", "active")
            },
            "encrypted": BooleanField(LABELS["encrypted"], validators=[_may_encrypt]),
        }
        self.add_form_extra_fields = self.edit_form_extra_fields = fields
        super()._init_forms()

    def prefill_form(self, form: Any, pk: Any) -> None:
        item = self.datamodel.get(pk)
        if item is not None:
            form.choices.data = choices_text(item.choices)
            form.default.data = "" if item.default is None else str(item.default)

    def pre_add(self, item: FieldDefinition) -> None:
        self._normalise(item)

    def pre_update(self, item: FieldDefinition) -> None:
        self._normalise(item)

    def post_add(self, item: FieldDefinition) -> None:
        _tell_about_stored_values(item)

    def post_update(self, item: FieldDefinition) -> None:
        _tell_about_stored_values(item)

    def _normalise(self, item: FieldDefinition) -> None:
        """Choices from their lines, the default in the stored form of the field's kind."""
        if item.position is None:
            item.position = 100
        if isinstance(item.choices, str):
            item.choices = parse_choices(item.choices) or None
        if item.default in ("", None):
            item.default = None
            return
        try:
            item.default = clean_value(session(), item, item.default)
        except ValueError as exc:
            raise ValueError(f"{LABELS['default']}: {exc}") from None
