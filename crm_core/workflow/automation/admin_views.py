"""Administration → 自动化规则: rules with their trigger, conditions and actions; the dry run,
the run log and the version history of each; switching a rule on and off.

Actions are edited as rows: the action, and its settings as ``key = value`` lines (the
settings each action takes are listed on the form). Blank rows are left out.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ...db import session, utcnow
from ...lowcode.validation import JOINS, rule_models
from ...web.write_errors import in_range
from . import definitions, dryrun
from .actions import actions, params_text, parse_params
from .models import OUTCOMES, TRIGGERS, AutomationRule, AutomationRun
from .rulecache import RuleDef

BLANK_ROWS = 2
RUNS_PAGE = 50
CONDITION_HELP = _l(
    "One per line: field operator value, e.g. city eq 上海 or industry eq 制造业. "
    "Operators: eq ne gt ge lt le in contains starts_with empty not_empty. "
    "Empty: every record."
)


def _rule_or_404(rule_id: int) -> AutomationRule:
    table = AutomationRule.__table__
    rule = session().get(AutomationRule, rule_id) if in_range(table.c.id, rule_id) else None
    if rule is None:
        abort(404)
    return rule


def _actions_from_form() -> tuple[list[dict[str, Any]], list[str]]:
    types = request.form.getlist("action_type")
    texts = request.form.getlist("action_params")
    steps: list[dict[str, Any]] = []
    bad: list[str] = []
    for i, kind in enumerate(types):
        text = texts[i] if i < len(texts) else ""
        if not kind.strip() and not text.strip():
            continue
        problems: list[str] = []
        params = parse_params(text, problems)
        number = len(steps) + 1
        bad += [str(_l("Action %(n)s: %(problem)s", n=number, problem=p)) for p in problems]
        steps.append({"type": kind.strip(), "params": params})
    return steps, bad


def trigger_summary(rule: AutomationRule) -> str:
    """The trigger in a few words for the list, in the user's language."""
    label = str(TRIGGERS.get(rule.trigger, rule.trigger))
    if rule.trigger == "event":
        detail = dict(definitions.event_types()).get(rule.event_type or "", rule.event_type)
    elif rule.trigger == "relative_time" and rule.field:
        days = f"{rule.offset_days or 0:+d}"
        detail = str(_l("%(field)s %(days)s days", field=rule.field, days=days))
    elif rule.trigger == "schedule":
        detail = " ".join(x for x in (rule.time_of_day, rule.days) if x)
    else:
        detail = rule.field
    return str(_l("%(trigger)s: %(detail)s", trigger=label, detail=detail)) if detail else label


def trigger_of(run: AutomationRun) -> str:
    """A run's trigger key in words: the event number, the date, the schedule slot."""
    kind, _colon, value = run.trigger_key.partition(":")
    value = value.replace("T", " ")
    if kind == "event":
        return str(_l("Event %(value)s", value=value))
    if kind == "date":
        return str(_l("Date %(value)s", value=value))
    if kind == "slot":
        return str(_l("Schedule %(value)s", value=value))
    return run.trigger_key


class AutomationRuleView(BaseView):
    """``/automationrules/``: the rules; ``add`` and ``<id>/edit`` define one, ``<id>/dryrun``
    predicts, ``<id>/runs`` lists its runs."""

    route_base = "/automationrules"
    default_view = "rules"
    method_permission_name = {
        "rules": "list",
        "add": "add",
        "edit": "edit",
        "toggle": "edit",
        "retry": "edit",
        "dry_run": "show",
        "runs": "show",
    }

    @expose("/")
    @has_access
    def rules(self):  # type: ignore[no-untyped-def]
        s = session()
        rules = list(
            s.scalars(select(AutomationRule).order_by(AutomationRule.position, AutomationRule.name))
        )
        since = utcnow() - timedelta(days=1)
        counts: dict[tuple[int, str], int] = {
            (rule_id, status): n
            for rule_id, status, n in s.execute(
                select(AutomationRun.rule_id, AutomationRun.status, func.count())
                .where(AutomationRun.started_at >= since)
                .group_by(AutomationRun.rule_id, AutomationRun.status)
            )
        }
        return self.render_template(
            "crm/automation/rule_list.html",
            rules=rules,
            counts=counts,
            models=dict(rule_models()),
            summary=trigger_summary,
        )

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):  # type: ignore[no-untyped-def]
        return self._form(AutomationRule(active=True, join="all", trigger="event", position=100))

    @expose("/<int:rule_id>/edit", methods=["GET", "POST"])
    @has_access
    def edit(self, rule_id: int):  # type: ignore[no-untyped-def]
        return self._form(_rule_or_404(rule_id))

    def _form(self, rule: AutomationRule):  # type: ignore[no-untyped-def]
        s = session()
        errors: dict[str, list[str]] = {}
        data = (
            definitions.definition_of(rule)
            if rule.id
            else definitions.normalised(
                {"model": "Customer", "trigger": "event", "active": True, "position": 100}
            )
        )
        name = rule.name or ""
        steps = list(data["actions"])
        if request.method == "POST":
            form = request.form
            name = rule.name if rule.id else form.get("name", "").strip()
            steps, bad = _actions_from_form()
            raw: dict[str, Any] = {key: form.get(key, "") for key in definitions.FIELDS}
            raw["active"] = bool(form.get("active"))
            raw["conditions"] = form.get("conditions", "").splitlines()
            raw["actions"] = steps
            data = definitions.normalised(raw)
            errors = definitions.problems(data)
            if bad:
                errors.setdefault("actions", []).extend(bad)
            if not name:
                errors["name"] = [_("This field is required.")]
            elif not rule.id and s.scalar(
                select(AutomationRule.id).where(AutomationRule.name == name)
            ):
                errors["name"] = [_("Another automation rule has this name.")]
            if not errors:
                rule.name = name
                user = g.get("user")
                changed = definitions.save(s, rule, data, getattr(user, "username", None))
                s.commit()
                if changed and rule.version > 1:
                    flash(_("Saved as version %(n)s.", n=rule.version), "success")
                else:
                    flash(_("Saved."), "success")
                return redirect(url_for("AutomationRuleView.rules"))
        return self.render_template(
            "crm/automation/rule_form.html",
            rule=rule,
            name=name,
            values=data,
            conditions="\n".join(data["conditions"] or []),
            steps=[{"type": a["type"], "params": params_text(a["params"])} for a in steps]
            + [{"type": "", "params": ""} for _ in range(BLANK_ROWS)],
            errors=errors,
            models=rule_models(),
            triggers=TRIGGERS,
            event_types=definitions.event_types(),
            joins=JOINS,
            offered=sorted(actions().values(), key=lambda a: a.name),
            action_labels={name: spec.label for name, spec in actions().items()},
            condition_help=CONDITION_HELP,
            versions=definitions.versions(s, rule) if rule.id else [],
        )

    @expose("/<int:rule_id>/toggle", methods=["POST"])
    @has_access
    def toggle(self, rule_id: int):  # type: ignore[no-untyped-def]
        rule = _rule_or_404(rule_id)
        rule.active = not rule.active
        session().commit()
        flash(_("Switched on.") if rule.active else _("Switched off."), "success")
        return redirect(url_for("AutomationRuleView.rules"))

    @expose("/<int:rule_id>/dryrun")
    @has_access
    def dry_run(self, rule_id: int):  # type: ignore[no-untyped-def]
        rule = _rule_or_404(rule_id)
        text = request.args.get("records", "").replace("，", ",")
        ids = [
            int(p)
            for p in text.split(",")
            if p.strip().isdigit() and in_range(AutomationRun.__table__.c.record_id, int(p))
        ]
        problem = None
        if text.strip() and not ids:
            problem = _("Record numbers are whole numbers separated by commas.")
        definition = RuleDef.of(rule)
        records = dryrun.sample(rule.model, ids or None)
        predictions = dryrun.dry_run(definition, records)
        return self.render_template(
            "crm/automation/dry_run.html",
            rule=rule,
            records_text=text,
            predictions=predictions,
            problem=problem,
            sampled=not ids,
        )

    @expose("/<int:rule_id>/runs")
    @has_access
    def runs(self, rule_id: int):  # type: ignore[no-untyped-def]
        rule = _rule_or_404(rule_id)
        status = request.args.get("status", "")
        before = request.args.get("before", type=int)
        query = select(AutomationRun).where(AutomationRun.rule_id == rule.id)
        if status in OUTCOMES:
            query = query.where(AutomationRun.status == status)
        if before is not None and in_range(AutomationRun.__table__.c.id, before):
            query = query.where(AutomationRun.id < before)
        rows = list(session().scalars(query.order_by(AutomationRun.id.desc()).limit(RUNS_PAGE + 1)))
        more = len(rows) > RUNS_PAGE
        rows = rows[:RUNS_PAGE]
        return self.render_template(
            "crm/automation/runs.html",
            rule=rule,
            runs=rows,
            status=status,
            outcomes=OUTCOMES,
            models=dict(rule_models()),
            next_before=rows[-1].id if more and rows else None,
            trigger_of=trigger_of,
        )

    @expose("/runs/<int:run_id>/retry", methods=["POST"])
    @has_access
    def retry(self, run_id: int):  # type: ignore[no-untyped-def]
        s = session()
        table = AutomationRun.__table__
        run = s.get(AutomationRun, run_id) if in_range(table.c.id, run_id) else None
        if run is None:
            abort(404)
        if run.status in ("failed", "retry"):
            run.status = "retry"
            run.next_attempt_at = utcnow()
            s.commit()
            flash(_("The run will be tried again within a minute."), "success")
        return redirect(url_for("AutomationRuleView.runs", rule_id=run.rule_id))
