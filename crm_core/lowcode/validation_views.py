"""Administration → 校验规则: validation rules, one per line of conditions."""

from __future__ import annotations

from typing import Any

from flask_appbuilder.fieldwidgets import Select2Widget
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from wtforms import BooleanField, IntegerField, SelectField, ValidationError
from wtforms.validators import Optional

from ..db import model_class
from ..web.crud import CrmInterface, CrmModelView
from . import conditions as cond
from .condition_form import condition_fields
from .validation import CHECKS, JOINS, RULE_FIELDS, ValidationRule, rule_models, rule_problems

LABELS = {
    "model": _l("Record type"),
    "name": _l("Name"),
    "join": lazy_pgettext("validation rule", "When"),
    "conditions": _l("Conditions"),
    "target": _l("Field"),
    "check": _l("Check"),
    "argument": _l("Value"),
    "message_zh": _l("Message (Chinese)"),
    "message_en": _l("Message (English)"),
    "position": _l("Position"),
    "active": _l("Active"),
    "updated_at": _l("Changed"),
}


class RuleIsUsable:
    """Form validator on the conditions: they parse, and the rule names real fields."""

    def __call__(self, form: Any, field: Any) -> None:
        try:
            parsed = cond.parse(field.data or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        model = model_class(form.model.data or "")
        if model is None:
            return
        rule = ValidationRule(
            conditions=cond.as_data(parsed),
            target=(form.target.data or "").strip(),
            check=form.check.data,
            argument=(form.argument.data or "").strip() or None,
        )
        found = rule_problems(model, rule)
        if found:
            raise ValidationError(" ".join(found))


class ValidationRuleView(CrmModelView):
    """Validation rules per record type; "delete" deactivates a rule."""

    datamodel = CrmInterface(ValidationRule)
    route_base = "/validationrules"
    list_title = _l("Validation rules")
    show_title = add_title = edit_title = _l("Validation rule")
    label_columns = LABELS
    list_columns = ["model", "position", "name", "target", "check", "active"]
    _form = ["model", "name", *RULE_FIELDS]
    add_columns = edit_columns = _form
    show_columns = [*_form, "updated_at"]
    search_columns = ["model", "name", "target", "active"]
    base_order = ("model", "asc")
    description_columns = {
        "conditions": _l(
            "One per line: field operator value, e.g. industry eq 制造业 or custom__grade in A,B. "
            "Operators: eq ne gt ge lt le in contains starts_with empty not_empty. "
            "Empty: the check always applies."
        ),
        "target": _l("The field checked, e.g. credit_limit, custom__grade or expected_close"),
        "argument": _l("For at least / at most: a value; before / after: another field"),
    }
    formatters_columns = {
        "check": lambda c: CHECKS.get(c, c),
        "join": lambda j: JOINS.get(j, j),
        "conditions": cond.as_text,
        "model": lambda m: dict(rule_models()).get(m, m),
    }

    def _init_forms(self) -> None:
        fields = {
            **condition_fields(
                LABELS, rule_models, self.description_columns["conditions"], RuleIsUsable()
            ),
            "check": SelectField(
                LABELS["check"], choices=list(CHECKS.items()), widget=Select2Widget()
            ),
            "position": IntegerField(LABELS["position"], default=100, validators=[Optional()]),
            "active": BooleanField(LABELS["active"], default=True),
        }
        self.add_form_extra_fields = self.edit_form_extra_fields = fields
        super()._init_forms()

    def prefill_form(self, form: Any, pk: Any) -> None:
        item = self.datamodel.get(pk)
        if item is not None:
            form.conditions.data = cond.as_text(item.conditions)

    def pre_add(self, item: ValidationRule) -> None:
        self._normalise(item)

    def pre_update(self, item: ValidationRule) -> None:
        self._normalise(item)

    def _normalise(self, item: ValidationRule) -> None:
        if isinstance(item.conditions, str):
            item.conditions = cond.as_data(cond.parse(item.conditions)) or None
        item.target = (item.target or "").strip()
        item.argument = (item.argument or "").strip() or None
        if item.position is None:
            item.position = 100
