"""What a rule definition may say, and saving one with its version history.

The admin screen and configuration bundles both go through :func:`problems` and :func:`save`:
a definition is a dict of :data:`FIELDS`; saving a changed one bumps the rule's version and
keeps the whole definition as it was saved.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...db import model_class
from ...lowcode import conditions as cond
from ...lowcode.validation import rule_models
from ..assignment import hours
from . import actions as action_defs
from .models import TRIGGERS, AutomationRule, AutomationRuleVersion
from .timed import date_column

#: The settings of a rule besides its name, as bundles and versions hold them.
FIELDS = (
    "label_zh",
    "label_en",
    "model",
    "active",
    "position",
    "trigger",
    "event_type",
    "field",
    "offset_days",
    "time_of_day",
    "days",
    "join",
    "conditions",
    "actions",
)


def event_types() -> list[tuple[str, str]]:
    """Event types rules may name, with their labels."""
    found = current_app.extensions["crm"].event_types
    return sorted((name, str(spec.label or name)) for name, (_owner, spec) in found.items())


def definition_of(rule: AutomationRule) -> dict[str, Any]:
    """The rule's definition (conditions as lines, actions as stored)."""
    return {
        "label_zh": rule.label_zh,
        "label_en": rule.label_en,
        "model": rule.model,
        "active": bool(rule.active),
        "position": rule.position,
        "trigger": rule.trigger,
        "event_type": rule.event_type,
        "field": rule.field,
        "offset_days": rule.offset_days,
        "time_of_day": rule.time_of_day,
        "days": rule.days,
        "join": rule.join,
        "conditions": [str(c) for c in rule.parsed()],
        "actions": [dict(a) for a in rule.actions or []],
    }


def normalised(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every field present, blanks as ``None`` and the unused trigger settings
    cleared (an event rule keeps no date field)."""
    out = {key: data.get(key) for key in FIELDS}
    for key in ("label_en", "event_type", "field", "time_of_day", "days"):
        out[key] = (str(out[key]).strip() or None) if out[key] is not None else None
    out["active"] = bool(out["active"] if data.get("active") is not None else True)
    out["join"] = out["join"] if out["join"] in ("all", "any") else "all"
    out["position"] = _int(out["position"], 100)
    out["offset_days"] = _int(out["offset_days"], None)
    out["conditions"] = [str(c).strip() for c in out["conditions"] or [] if str(c).strip()]
    out["actions"] = [
        {
            "type": str(a.get("type") or ""),
            "params": {str(k): str(v) for k, v in (a.get("params") or {}).items()},
        }
        for a in out["actions"] or []
        if isinstance(a, dict)
    ]
    used = {
        "event": ("event_type",),
        "field_change": ("field",),
        "relative_time": ("field", "offset_days"),
        "schedule": ("time_of_day", "days"),
    }.get(str(out["trigger"]), ())
    for key in ("event_type", "field", "offset_days", "time_of_day", "days"):
        if key not in used:
            out[key] = None
    if out["trigger"] == "relative_time" and out["offset_days"] is None:
        out["offset_days"] = 0
    if out["trigger"] == "schedule" and out["days"]:
        with contextlib.suppress(ValueError):  # named by problems()
            out["days"] = hours.normal_days(out["days"])
    return out


def _int(value: Any, default: int | None) -> int | None:
    if value is None or str(value).strip() == "":
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        return value  # type: ignore[no-any-return]  # named by problems()


def problems(data: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with a normalised definition, by field, in the user's language."""
    errors: dict[str, list[str]] = {}

    def say(key: str, text: Any) -> None:
        errors.setdefault(key, []).append(str(text))

    if not data.get("label_zh"):
        say("label_zh", _l("This field is required."))
    model = model_class(str(data.get("model") or ""))
    if model is None or data.get("model") not in dict(rule_models()):
        say("model", _l("Choose a record type."))
        return errors
    trigger = data.get("trigger")
    if trigger not in TRIGGERS:
        say("trigger", _l("Choose a trigger."))
    elif trigger == "event":
        if not data.get("event_type"):
            say("event_type", _l("This field is required."))
        elif data["event_type"] not in dict(event_types()):
            say("event_type", _l("There is no event %(name)s.", name=data["event_type"]))
    elif trigger == "field_change":
        if not getattr(model, "__crm_event__", None):
            say("trigger", _l("Changes of this record type are not followed."))
        elif not data.get("field"):
            say("field", _l("This field is required."))
        elif cond.field_kind(model, data["field"]) is None or "." in data["field"]:
            say("field", _l("There is no field %(field)s.", field=data["field"]))
    elif trigger == "relative_time":
        if date_column(model, data.get("field")) is None:
            say("field", _l("Name a date field of the record, e.g. expected_close."))
        if not isinstance(data.get("offset_days"), int):
            say("offset_days", _l("A whole number of days: -3 is three days before."))
    elif trigger == "schedule":
        try:
            if hours.parse_time(data.get("time_of_day")) is None:
                say("time_of_day", _l("This field is required."))
        except ValueError as exc:
            say("time_of_day", exc)
        try:
            hours.parse_days(data.get("days"))
        except ValueError as exc:
            say("days", exc)
    if not isinstance(data.get("position"), int):
        say("position", _l("A whole number."))
    try:
        parsed = cond.parse("\n".join(data.get("conditions") or []))
    except ValueError as exc:
        say("conditions", exc)
    else:
        for text in cond.problems(model, parsed):
            say("conditions", text)
    for text in action_defs.problems(model, data.get("actions") or []):
        say("actions", text)
    return errors


def save(
    session: Session, rule: AutomationRule, data: dict[str, Any], saved_by: str | None
) -> bool:
    """Apply a checked, normalised definition to ``rule`` (added to ``session``); a changed
    definition becomes the next version. True when anything changed. The caller commits."""
    before = definition_of(rule) if rule.id is not None else None
    for key in FIELDS:
        if key != "conditions":
            setattr(rule, key, data[key])
    rule.conditions = cond.as_data(cond.parse("\n".join(data["conditions"]))) or None
    after = definition_of(rule)
    if before == after:
        return False
    last = 0
    if rule.id is not None:
        last = (
            session.scalar(
                select(func.max(AutomationRuleVersion.number)).where(
                    AutomationRuleVersion.rule_id == rule.id
                )
            )
            or 0
        )
    rule.version = last + 1
    session.add(rule)
    session.flush()
    session.add(
        AutomationRuleVersion(
            rule_id=rule.id, number=rule.version, definition=after, saved_by=saved_by
        )
    )
    return True


def versions(
    session: Session, rule: AutomationRule, limit: int = 30
) -> list[AutomationRuleVersion]:
    query = (
        select(AutomationRuleVersion)
        .where(AutomationRuleVersion.rule_id == rule.id)
        .order_by(AutomationRuleVersion.number.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
