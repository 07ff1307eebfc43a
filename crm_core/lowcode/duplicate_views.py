"""Administration → 查重规则: duplicate rules per record type."""

from __future__ import annotations

from typing import Any

from flask_appbuilder.fieldwidgets import Select2Widget
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, IntegerField, SelectField, ValidationError
from wtforms.validators import DataRequired, NumberRange, Optional

from ..db import model_class
from ..web.crud import CrmInterface, CrmModelView
from . import conditions as cond
from .duplicates import ACTIONS, METHODS, DuplicateRule
from .validation import rule_models

LABELS = {
    "model": _l("Record type"),
    "name": _l("Name"),
    "field": _l("Field"),
    "method": _l("Compared as"),
    "threshold": _l("Similarity (%)"),
    "action": _l("When found"),
    "position": _l("Position"),
    "active": _l("Active"),
    "updated_at": _l("Changed"),
}


def _field_exists(form: Any, field: Any) -> None:
    model = model_class(form.model.data or "")
    name = (field.data or "").strip()
    if model is not None and cond.field_kind(model, name) is None:
        raise ValidationError(str(_l("There is no field %(field)s.", field=name)))
    if "." in name:
        raise ValidationError(str(_l("Use a field of the record itself.")))


class DuplicateRuleView(CrmModelView):
    """Duplicate rules per record type; "delete" deactivates a rule."""

    datamodel = CrmInterface(DuplicateRule)
    route_base = "/duplicaterules"
    list_title = _l("Duplicate rules")
    show_title = add_title = edit_title = _l("Duplicate rule")
    label_columns = LABELS
    list_columns = ["model", "position", "name", "field", "method", "action", "active"]
    _form = ["model", "name", "field", "method", "threshold", "action", "position", "active"]
    add_columns = edit_columns = _form
    show_columns = [*_form, "updated_at"]
    search_columns = ["model", "name", "field", "active"]
    base_order = ("model", "asc")
    description_columns = {
        "field": _l("e.g. phone, email, name or custom__wechat_id"),
        "threshold": _l(
            "For similar names: 100 means the same name once legal forms such as 有限公司 are "
            "left out; 90 also finds small differences"
        ),
    }
    formatters_columns = {
        "method": lambda m: METHODS.get(m, m),
        "action": lambda a: ACTIONS.get(a, a),
        "model": lambda m: dict(rule_models()).get(m, m),
    }

    def _init_forms(self) -> None:
        self.add_form_extra_fields = self.edit_form_extra_fields = {
            "model": SelectField(
                LABELS["model"],
                choices=rule_models,  # type: ignore[arg-type]
                validators=[DataRequired()],
                widget=Select2Widget(),
            ),
            "method": SelectField(
                LABELS["method"], choices=list(METHODS.items()), widget=Select2Widget()
            ),
            "action": SelectField(
                LABELS["action"], choices=list(ACTIONS.items()), widget=Select2Widget()
            ),
            "threshold": IntegerField(
                LABELS["threshold"],
                default=90,
                description=self.description_columns["threshold"],
                validators=[Optional(), NumberRange(50, 100)],
            ),
            "position": IntegerField(LABELS["position"], default=100, validators=[Optional()]),
            "active": BooleanField(LABELS["active"], default=True),
        }
        self.validators_columns = {"field": [DataRequired(), _field_exists]}
        super()._init_forms()

    def pre_add(self, item: DuplicateRule) -> None:
        self._normalise(item)

    def pre_update(self, item: DuplicateRule) -> None:
        self._normalise(item)

    def _normalise(self, item: DuplicateRule) -> None:
        item.field = (item.field or "").strip()
        item.threshold = item.threshold or 90
        item.position = 100 if item.position is None else item.position
