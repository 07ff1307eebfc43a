"""The active rules, read once and kept as plain values until a rule changes.

Every event is matched against the rules, so they are not read per event: this process
keeps them for a few seconds, and drops them at once when it writes a rule itself.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ...db import model_class
from ...lowcode import conditions as cond
from .models import AutomationRule, AutomationRuleVersion

#: How long another process's rule change may take to be seen here.
MAX_AGE = 2.0


@dataclass(frozen=True)
class RuleDef:
    """A rule as runs use it, detached from any session."""

    id: int
    name: str
    label: str
    model: str
    trigger: str
    event_type: str | None
    field: str | None
    offset_days: int
    time_of_day: str | None
    days: str | None
    join: str
    conditions: tuple[cond.Condition, ...]
    actions: tuple[dict[str, Any], ...]
    version: int
    #: The event prefix of the record type (``customer``), for field-change rules.
    prefix: str | None = None
    #: The conditions prepared for the record type (kinds and values read once).
    tests: tuple[cond.Test, ...] = ()

    def __str__(self) -> str:
        return self.label

    @classmethod
    def of(cls, rule: AutomationRule) -> RuleDef:
        return cls(
            id=rule.id,
            name=rule.name,
            label=rule.label,
            model=rule.model,
            trigger=rule.trigger,
            event_type=rule.event_type,
            field=rule.field,
            offset_days=rule.offset_days or 0,
            time_of_day=rule.time_of_day,
            days=rule.days,
            join=rule.join or "all",
            conditions=tuple(rule.parsed()),
            actions=tuple(dict(a) for a in rule.actions or []),
            version=rule.version,
            prefix=event_prefix(rule.model),
            tests=_prepared(rule.model, rule.parsed()),
        )

    def holds(self, record: Any) -> bool:
        """Whether ``record`` meets the rule's conditions (all or any; none: always)."""
        if not self.conditions:
            return True
        tests = self.tests or _prepared(type(record).__name__, list(self.conditions))
        passed = (cond.passes(record, t) for t in tests)
        return any(passed) if self.join == "any" else all(passed)


def _prepared(model: str, conditions: list[cond.Condition]) -> tuple[cond.Test, ...]:
    cls = model_class(model)
    return tuple(cond.prepare(cls, c) for c in conditions) if cls is not None else ()


@dataclass(frozen=True)
class _Rules:
    """The active rules, and those an event type reaches, looked up once per type."""

    ordered: list[RuleDef]
    by_event: dict[str, list[RuleDef]]


_lock = threading.Lock()
_cache: dict[str, Any] = {"at": 0.0, "rules": None, "generation": 0, "read": -1}


def _current(session: Session) -> _Rules:
    with _lock:
        fresh = time.monotonic() - _cache["at"] < MAX_AGE
        if _cache["rules"] is not None and fresh and _cache["read"] == _cache["generation"]:
            return _cache["rules"]  # type: ignore[no-any-return]
        generation = _cache["generation"]
    query = (
        select(AutomationRule)
        .where(AutomationRule.active.is_(True))
        .order_by(AutomationRule.position, AutomationRule.id)
    )
    with session.no_autoflush:
        rules = _Rules([RuleDef.of(r) for r in session.scalars(query)], {})
    with _lock:
        _cache.update(at=time.monotonic(), rules=rules, read=generation)
    return rules


def active(session: Session) -> list[RuleDef]:
    """Every active rule, in order (position, id)."""
    return _current(session).ordered


def for_event(session: Session, event_type: str) -> list[RuleDef]:
    """The rules an event of ``event_type`` may trigger: ``event`` rules on that type and
    ``field_change`` rules whose record type emits it as ``created`` or ``updated``."""
    rules = _current(session)
    found = rules.by_event.get(event_type)
    if found is None:
        prefix, _dot, what = event_type.rpartition(".")
        changes = what in ("created", "updated")
        found = [
            rule
            for rule in rules.ordered
            if (rule.trigger == "event" and rule.event_type == event_type)
            or (rule.trigger == "field_change" and changes and rule.prefix == prefix)
        ]
        rules.by_event[event_type] = found
    return found


def event_prefix(model: str) -> str | None:
    cls = model_class(model)
    return getattr(cls, "__crm_event__", None) if cls is not None else None


def forget() -> None:
    """Drop the kept rules (a rule was written in this process)."""
    with _lock:
        _cache["generation"] += 1


@event.listens_for(Session, "after_flush")
def _rules_written(session: Session, _ctx: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, AutomationRule | AutomationRuleVersion):
            forget()
            return
