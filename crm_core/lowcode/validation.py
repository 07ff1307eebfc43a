"""Validation rules admins write: "if field A is X then field B is required", ranges, patterns,
one date before another — each with its own message in Chinese and English.

A rule is checked on every write of its model, from any screen, API, import, command or job
(:func:`install`): on new records always, on changed records when one of the fields it reads
changed (so a rule added later does not make older records unwritable for unrelated edits).
A broken rule is a :class:`~crm_core.errors.FieldError` naming the rule's field.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Boolean, DateTime, Integer, String, event, inspect, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..db import utcnow
from ..errors import FieldError
from . import conditions as cond
from .fields import custom_column
from .live import PREFIX
from .picklists import label_in_language

CHECKS = {
    "required": _l("is required"),
    "empty": _l("must be empty"),
    "min": _l("is at least"),
    "max": _l("is at most"),
    "pattern": _l("matches the pattern"),
    "one_of": _l("is one of"),
    "before": _l("is before the field"),
    "after": _l("is after the field"),
}
JOINS = {"all": _l("all conditions hold"), "any": _l("any condition holds")}
#: What a rule says besides its model and name (its form, and its entry in a bundle).
RULE_FIELDS = (
    "join",
    "conditions",
    "target",
    "check",
    "argument",
    "message_zh",
    "message_en",
    "position",
    "active",
)


class ValidationRule(Model):
    """One rule of a model: when ``conditions`` hold, ``target`` must pass ``check``."""

    __tablename__ = "crm_validation_rule"
    __crm_audit__ = "validation_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    join: Mapped[str] = mapped_column(String(3), default="all", nullable=False)
    conditions: Mapped[Any] = mapped_column(JSON, nullable=True)
    target: Mapped[str] = mapped_column(String(80), nullable=False)
    check: Mapped[str] = mapped_column(String(20), nullable=False)
    argument: Mapped[str | None] = mapped_column(String(200))
    message_zh: Mapped[str] = mapped_column(String(300), nullable=False)
    message_en: Mapped[str | None] = mapped_column(String(300))
    position: Mapped[int] = mapped_column(Integer, default=100, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )

    def __str__(self) -> str:
        return self.name

    def parsed(self) -> list[cond.Condition]:
        return [cond.Condition(**c) for c in self.conditions or []]

    def fields(self) -> set[str]:
        """Every field the rule reads."""
        found = {c.field for c in self.parsed()} | {self.target}
        if self.check in ("before", "after") and self.argument:
            found.add(self.argument)
        return found


def rule_problems(model: type, rule: Any) -> list[str]:
    """What makes ``rule`` unusable on ``model``, in the user's language."""
    out = cond.problems(model, rule.parsed())
    kind = cond.field_kind(model, rule.target)
    if kind is None:
        return [*out, str(_l("There is no field %(field)s.", field=rule.target))]
    argument = rule.argument or ""
    if rule.check in ("min", "max"):
        try:
            if cond.coerce(kind, argument) is None:
                raise ValueError(argument)
        except ValueError:
            out.append(
                str(_l("%(value)s is not a value of %(field)s.", value=argument, field=rule.target))
            )
    elif rule.check == "pattern":
        try:
            re.compile(argument)
        except re.error:
            out.append(str(_l("Not a valid regular expression.")))
    elif rule.check in ("before", "after") and cond.field_kind(model, argument) not in (
        "date",
        "datetime",
        "number",
    ):
        out.append(str(_l("%(field)s is not a date or number field.", field=argument or "-")))
    elif rule.check == "one_of" and not argument.strip():
        out.append(str(_l("List the allowed values, separated by commas.")))
    return out


def passes(obj: Any, rule: ValidationRule) -> bool:
    """Whether ``obj`` passes ``rule`` (a rule whose conditions do not hold passes)."""
    if not cond.all_hold(obj, rule.parsed(), rule.join):
        return True
    kind = cond.field_kind(type(obj), rule.target) or "text"
    raw = cond.value_of(obj, rule.target)
    empty = raw is None or raw == "" or raw == []
    if rule.check == "required":
        return not empty
    if rule.check == "empty":
        return empty
    if empty:
        return True  # the other checks apply to values; "required" asks for one
    argument = rule.argument or ""
    try:
        value = cond.coerce(kind, raw) if kind != "list" else raw
        if rule.check == "min":
            return bool(value >= cond.coerce(kind, argument))
        if rule.check == "max":
            return bool(value <= cond.coerce(kind, argument))
        if rule.check == "pattern":
            return re.fullmatch(argument, str(raw)) is not None
        if rule.check == "one_of":
            allowed = {a.strip() for a in argument.split(",")}
            values = raw if isinstance(raw, list) else [raw]
            return all(str(v) in allowed for v in values)
        other = cond.value_of(obj, argument)
        if other in (None, ""):
            return True
        other_kind = cond.field_kind(type(obj), argument) or kind
        other_value = cond.coerce(other_kind, other)
        if rule.check == "before":
            return bool(value < other_value)
        return bool(value > other_value)
    except (ValueError, TypeError, re.error):
        return False


def message(rule: ValidationRule) -> str:
    return label_in_language(rule.message_zh, rule.message_en)


def error_key(model: type, field: str) -> str:
    """How an error names a field: ``custom.grade`` for a custom field, as everywhere else."""
    if field.startswith(PREFIX):
        return f"{custom_column(model) or 'custom'}.{field[len(PREFIX) :]}"
    return field


def fields_changed(obj: Any, fields: set[str]) -> bool:
    """Whether a write of ``obj`` changes one of ``fields`` (custom fields key by key)."""
    state = inspect(obj)
    for field in fields:
        if field.startswith(PREFIX):
            column = custom_column(type(obj))
            if not column or not state.attrs[column].history.has_changes():
                continue
            history = state.attrs[column].history
            before = (history.deleted[0] if history.deleted else None) or {}
            after = getattr(obj, column) or {}
            key = field[len(PREFIX) :]
            if before.get(key) != after.get(key):
                return True
            continue
        root = field.partition(".")[0]
        if root in state.attrs and state.attrs[root].history.has_changes():
            return True
        rel = state.mapper.relationships.get(root)
        if rel is not None and any(
            state.attrs[c.key].history.has_changes()
            for c in rel.local_columns
            if c.key in state.attrs
        ):
            return True
    return False


def active_rows(session: Session, row_class: Any, model: str) -> list[Any]:
    """The active rules of ``row_class`` (validation or duplicate rules) for ``model``, in
    their order."""
    with session.no_autoflush:
        return list(
            session.scalars(
                select(row_class)
                .where(row_class.model == model, row_class.active.is_(True))
                .order_by(row_class.position, row_class.id)
            )
        )


def each_written(session: Session, check: Any) -> None:
    """``check(session, obj, new, cache)`` for every new and changed record of a flush, with
    one cache of rules for the flush."""
    cache: dict[str, list[Any]] = {}
    for obj in list(session.new):
        check(session, obj, True, cache)
    for obj in list(session.dirty):
        if obj not in session.deleted:
            check(session, obj, False, cache)


def check(session: Session, obj: Any, new: bool, cache: dict[str, list[Any]]) -> None:
    """Every active rule of ``obj``'s model that applies; ``FieldError`` naming the fields."""
    if not hasattr(type(obj), "__crm_label__"):
        return
    model = type(obj).__name__
    if model not in cache:
        cache[model] = active_rows(session, ValidationRule, model)
    errors: dict[str, list[str]] = {}
    for rule in cache[model]:
        if not new and not fields_changed(obj, rule.fields()):
            continue
        if not passes(obj, rule):
            errors.setdefault(error_key(type(obj), rule.target), []).append(message(rule))
    if errors:
        raise FieldError(errors)


def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    each_written(session, check)


def install() -> None:
    """Check validation rules before every flush (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)


def rule_models() -> list[tuple[str, str]]:
    """Models validation rules may name (those with a label), by label."""
    found = [
        (m.class_.__name__, str(m.class_.__crm_label__))
        for m in Model.registry.mappers
        if hasattr(m.class_, "__crm_label__")
    ]
    return sorted(found, key=lambda pair: pair[1])
