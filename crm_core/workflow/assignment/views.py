"""Administration → 分配规则: assignment rules, with a preview of who gets the next record."""

from __future__ import annotations

from typing import Any

from flask import abort, request
from flask_appbuilder import expose, has_access
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from wtforms import (
    BooleanField,
    IntegerField,
    SelectField,
    StringField,
    ValidationError,
)
from wtforms.validators import NumberRange, Optional

from ...db import session
from ...lowcode import conditions as cond
from ...lowcode.condition_form import condition_fields
from ...lowcode.validation import JOINS
from ...web.crud import CrmInterface, CrmModelView
from . import hours
from .engine import preview
from .members import assignable_models
from .models import STRATEGIES, WHEN_UNAVAILABLE, AssignmentRule

LABELS = {
    "model": _l("Record type"),
    "name": _l("Name"),
    "position": _l("Position"),
    "active": _l("Active"),
    "join": lazy_pgettext("validation rule", "When"),
    "conditions": _l("Conditions"),
    "team": _l("Team"),
    "include_subteams": _l("Include sub-teams"),
    "users": _l("Users"),
    "strategy": _l("Strategy"),
    "capacity": _l("Capacity"),
    "days": _l("Working days"),
    "start_time": _l("From"),
    "end_time": _l("Until"),
    "when_unavailable": _l("When nobody can take it"),
    "set_team": _l("Set the team too"),
    "updated_at": _l("Changed"),
}
FORM = [
    "model",
    "name",
    "position",
    "active",
    "join",
    "conditions",
    "team",
    "include_subteams",
    "users",
    "strategy",
    "capacity",
    "days",
    "start_time",
    "end_time",
    "when_unavailable",
    "set_team",
]


def model_choices() -> list[tuple[str, str]]:
    """Record types with an owner, by label."""
    found = [
        (name, str(getattr(cls, "__crm_label__", name)))
        for name, cls in assignable_models().items()
    ]
    return sorted(found, key=lambda pair: pair[1])


class ConditionsAreUsable:
    """The conditions parse and name fields of the chosen record type."""

    def __call__(self, form: Any, field: Any) -> None:
        try:
            parsed = cond.parse(field.data or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        model = assignable_models().get(form.model.data or "")
        found = cond.problems(model, parsed) if model is not None else []
        if found:
            raise ValidationError(" ".join(found))


def _days_valid(_form: Any, field: Any) -> None:
    try:
        hours.parse_days(field.data)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _time_valid(_form: Any, field: Any) -> None:
    try:
        hours.parse_time(field.data)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _has_target(form: Any, _field: Any) -> None:
    if form.team.data is None and not form.users.data:
        raise ValidationError(str(_l("Choose a team or users.")))


class AssignmentRuleView(CrmModelView):
    """Assignment rules per record type, in their order; the first whose conditions hold
    decides."""

    datamodel = CrmInterface(AssignmentRule)
    route_base = "/assignmentrules"
    list_title = _l("Assignment rules")
    show_title = add_title = edit_title = _l("Assignment rule")
    show_template = "crm/assignment/show.html"
    label_columns = LABELS
    list_columns = ["model", "position", "name", "team", "strategy", "capacity", "active"]
    add_columns = edit_columns = FORM
    show_columns = [*FORM, "updated_at"]
    search_columns = ["model", "name", "active"]
    base_order = ("model", "asc")
    description_columns = {
        "conditions": _l(
            "One per line: field operator value, e.g. city eq 上海 or industry in 制造业,物流. "
            "Operators: eq ne gt ge lt le in contains starts_with empty not_empty. "
            "Empty: every record."
        ),
        "strategy": _l(
            "Round-robin: members in turn. Least loaded: the member owning the fewest "
            "active records."
        ),
        "capacity": _l("Most active records a user may own; empty: no limit"),
        "days": _l("1 = Monday … 7 = Sunday, e.g. 1-5 or 1,2,3,4,5; empty: every day"),
        "start_time": _l("e.g. 09:00; the time zone is the assignment.timezone setting"),
        "end_time": _l("e.g. 18:00; before From: overnight"),
        "set_team": _l("The record's team becomes the assignee's team"),
    }
    formatters_columns = {
        "strategy": lambda s: STRATEGIES.get(s, s),
        "join": lambda j: JOINS.get(j, j),
        "when_unavailable": lambda w: WHEN_UNAVAILABLE.get(w, w),
        "conditions": cond.as_text,
        "model": lambda m: dict(model_choices()).get(m, m),
    }

    def _init_forms(self) -> None:
        fields = {
            **condition_fields(
                LABELS,
                model_choices,
                self.description_columns["conditions"],
                ConditionsAreUsable(),
            ),
            "strategy": SelectField(
                LABELS["strategy"],
                choices=list(STRATEGIES.items()),
                description=self.description_columns["strategy"],
                validators=[_has_target],  # on a field always sent: an empty team is skipped
                widget=Select2Widget(),
            ),
            "capacity": IntegerField(
                LABELS["capacity"],
                description=self.description_columns["capacity"],
                validators=[Optional(), NumberRange(min=1)],
            ),
            "days": StringField(
                LABELS["days"],
                description=self.description_columns["days"],
                validators=[_days_valid],
            ),
            "start_time": StringField(
                LABELS["start_time"],
                description=self.description_columns["start_time"],
                validators=[_time_valid],
            ),
            "end_time": StringField(
                LABELS["end_time"],
                description=self.description_columns["end_time"],
                validators=[_time_valid],
            ),
            "when_unavailable": SelectField(
                LABELS["when_unavailable"],
                choices=list(WHEN_UNAVAILABLE.items()),
                widget=Select2Widget(),
            ),
            "position": IntegerField(LABELS["position"], default=100, validators=[Optional()]),
            "active": BooleanField(LABELS["active"], default=True),
            "include_subteams": BooleanField(LABELS["include_subteams"], default=False),
            "set_team": BooleanField(
                LABELS["set_team"], default=True, description=self.description_columns["set_team"]
            ),
        }
        self.add_form_extra_fields = self.edit_form_extra_fields = fields
        super()._init_forms()

    def prefill_form(self, form: Any, pk: Any) -> None:
        item = self.datamodel.get(pk)
        if item is not None:
            form.conditions.data = cond.as_text(item.conditions)

    def pre_add(self, item: AssignmentRule) -> None:
        self._normalise(item)

    def pre_update(self, item: AssignmentRule) -> None:
        self._normalise(item)

    def _normalise(self, item: AssignmentRule) -> None:
        if isinstance(item.conditions, str):
            item.conditions = cond.as_data(cond.parse(item.conditions)) or None
        item.days = hours.normal_days(item.days)
        item.start_time = _clock(item.start_time)
        item.end_time = _clock(item.end_time)
        if item.position is None:
            item.position = 100

    @expose("/preview/<int:pk>", methods=["GET"])
    @has_access
    @permission_name("show")
    def preview(self, pk: int):  # type: ignore[no-untyped-def]
        """Who the next record would go to under this rule (nothing is written), and, for a
        record id given as ``record``, whether the rule matches it."""
        rule = self.datamodel.get(pk)
        if rule is None:
            abort(404)
        model = assignable_models().get(rule.model)
        if model is None:
            abort(404)
        record_id = request.args.get("record", type=int)
        record = None
        matches = None
        if record_id is not None:
            record = session().get(model, record_id)  # record rules apply: hidden is not found
            if record is not None:
                matches = cond.all_hold(record, rule.parsed(), rule.join)
        result = preview(session(), record if record is not None else model(), rule)
        return self.render_template(
            "crm/assignment/preview.html",
            rule=rule,
            result=result,
            record_id=record_id,
            record=record,
            matches=matches,
            title=_l("Assignment preview"),
        )


def _clock(text: str | None) -> str | None:
    parsed = hours.parse_time(text)
    return parsed.strftime("%H:%M") if parsed is not None else None
