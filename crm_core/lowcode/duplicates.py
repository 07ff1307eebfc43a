"""Duplicate rules: a new or changed record that looks like one already in the CRM is refused
("block") or saved with a warning ("warn").

A rule names a field of a model and how to compare it: ``exact`` (the stored, normalised forms
are equal — phones in E.164, e-mails in lower case, custom values as checked) or ``fuzzy``
(names whose similarity, after dropping legal forms such as 有限公司 and brackets, reaches the
rule's threshold; rapidfuzz). Every record counts, whoever owns it: that is what stops two reps
from working the same customer (撞单). The message names the record found and its owner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from rapidfuzz import fuzz
from sqlalchemy import Boolean, DateTime, Integer, String, event, inspect, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..db import utcnow
from ..errors import FieldError
from . import conditions as cond
from .live import PREFIX, field_of
from .query import expression

METHODS = {"exact": _l("Exactly the same"), "fuzzy": _l("Similar names")}
ACTIONS = {"warn": _l("Warn"), "block": _l("Refuse")}
WARNINGS_KEY = "crm_duplicate_warnings"
MAX_FOUND = 3
FUZZY_CANDIDATES = 500
_LEGAL = re.compile(
    r"(股份有限公司|有限责任公司|有限公司|集团|分公司|总公司|公司|"
    r"co\.?,?\s*ltd\.?|company|limited|inc\.?|corp\.?|llc)",
    re.IGNORECASE,
)
_BRACKETS = re.compile(r"[(（][^)）]*[)）]")
_SPACE = re.compile(r"[\s·.,，、\-_]+")


class DuplicateRule(Model):
    """One way two records of ``model`` count as the same."""

    __tablename__ = "crm_duplicate_rule"
    __crm_audit__ = "duplicate_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    field: Mapped[str] = mapped_column(String(80), nullable=False)
    method: Mapped[str] = mapped_column(String(10), default="exact", nullable=False)
    threshold: Mapped[int] = mapped_column(Integer, default=90, nullable=False)
    action: Mapped[str] = mapped_column(String(10), default="warn", nullable=False)
    position: Mapped[int] = mapped_column(Integer, default=100, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Match:
    """A record that looks like the one being written."""

    rule: str
    field: str
    record_id: int
    label: str
    owner: str
    score: int
    block: bool


def normalise_name(name: str) -> str:
    """A company or person name without legal form, brackets, spaces and punctuation."""
    text = _BRACKETS.sub("", name or "")
    text = _LEGAL.sub("", text)
    return _SPACE.sub("", text).casefold()


def similarity(a: str, b: str) -> int:
    """How alike two names are, 0–100, after :func:`normalise_name`."""
    left, right = normalise_name(a), normalise_name(b)
    if not left or not right:
        return 0
    return int(round(fuzz.ratio(left, right)))


def _column(model: type, field: str) -> Any:
    if field.startswith(PREFIX):
        defn = field_of(model, field)
        return None if defn is None else expression(model, defn)
    column: Any = inspect(model).columns.get(field)
    return None if column is None else getattr(model, field)


def _scope(model: type, query: Any, obj: Any) -> Any:
    pk: Any = inspect(model).primary_key[0]
    identity = inspect(obj).identity if obj is not None else None
    if identity:
        query = query.where(pk != identity[0])
    if hasattr(model, "active"):
        query = query.where(model.active.is_(True))  # type: ignore[attr-defined]
    return query


def _describe(record: Any) -> tuple[str, str]:
    from ..org.display import display_user

    label = str(record)
    code = getattr(record, "code", None)
    if code:
        label = f"{label}（{code}）"
    owner = getattr(record, "owner", None) if hasattr(record, "owner_id") else None
    return label, display_user(owner) if owner is not None else ""


def find(session: Session, obj: Any, rule: DuplicateRule) -> list[Match]:
    """Records other than ``obj`` that ``rule`` finds alike (every owner's)."""
    return find_many(session, [obj], rule)[0]


def find_many(session: Session, objs: list[Any], rule: DuplicateRule) -> list[list[Match]]:
    """:func:`find` for many records of one model at once (an import's batch): one query per
    rule for exact rules, one per name prefix for similar names."""
    from ..security.rules import unrestricted

    if not objs:
        return []
    model = type(objs[0])
    column = _column(model, rule.field)
    values = [cond.value_of(obj, rule.field) for obj in objs]
    found: list[list[tuple[Any, int]]] = [[] for _obj in objs]
    if column is None:
        return [[] for _obj in objs]
    with session.no_autoflush, unrestricted():
        if rule.method == "fuzzy":
            _similar(session, model, column, objs, values, rule, found)
        else:
            _same(session, model, column, objs, values, found)
        return [_matches(rule, pairs) for pairs in found]


def _own_id(obj: Any) -> Any:
    identity = inspect(obj).identity
    return identity[0] if identity else None


def _same(
    session: Session,
    model: type,
    column: Any,
    objs: list[Any],
    values: list[Any],
    found: list[list[tuple[Any, int]]],
) -> None:
    wanted = list({v for v in values if v not in (None, "", [])})
    by_value: dict[Any, list[Any]] = {}
    pk: Any = inspect(model).primary_key[0]
    # Archived records are left out here rather than in SQL: without statistics, SQLite's
    # planner would read the archive flag's index (every active record) instead of the
    # field's, and the value finds only a few records anyway.
    archived = hasattr(model, "active")
    for start in range(0, len(wanted), 500):
        query = select(model, column).where(column.in_(wanted[start : start + 500]))
        for record, value in session.execute(query.order_by(pk)):
            if not archived or record.active:
                by_value.setdefault(value, []).append(record)
    for i, (obj, value) in enumerate(zip(objs, values, strict=True)):
        own = _own_id(obj)
        records = [r for r in by_value.get(value, []) if inspect(r).identity[0] != own]
        found[i] = [(record, 100) for record in records[:MAX_FOUND]]


def _similar(
    session: Session,
    model: type,
    column: Any,
    objs: list[Any],
    values: list[Any],
    rule: DuplicateRule,
    found: list[list[tuple[Any, int]]],
) -> None:
    from ..web.search import starts_with

    engine: Any = session.get_bind()
    prefixes: dict[str, list[Any]] = {}
    for value in values:
        text = str(value or "").strip()
        if text and text[:2] not in prefixes:
            query: Any = select(model).where(starts_with(column, text[:2], engine))
            query = _scope(model, query, None).limit(FUZZY_CANDIDATES)
            prefixes[text[:2]] = list(session.scalars(query))
    for i, (obj, value) in enumerate(zip(objs, values, strict=True)):
        text = str(value or "").strip()
        if not text:
            continue
        own = _own_id(obj)
        pairs = []
        for record in prefixes[text[:2]]:
            if inspect(record).identity[0] == own:
                continue
            score = similarity(text, str(cond.value_of(record, rule.field) or ""))
            if score >= rule.threshold:
                pairs.append((record, score))
        pairs.sort(key=lambda pair: -pair[1])
        found[i] = pairs


def _matches(rule: DuplicateRule, pairs: list[tuple[Any, int]]) -> list[Match]:
    out = []
    for record, score in pairs[:MAX_FOUND]:
        label, owner = _describe(record)
        pk = inspect(record).identity[0]
        out.append(Match(rule.name, rule.field, pk, label, owner, score, rule.action == "block"))
    return out


def message(match: Match) -> str:
    if match.owner:
        return _("Looks like %(record)s (owner %(owner)s).", record=match.label, owner=match.owner)
    return _("Looks like %(record)s.", record=match.label)


def check(session: Session, obj: Any, new: bool, cache: dict[str, list[Any]]) -> None:
    """Apply the model's duplicate rules to a new record, or to the changed fields of one."""
    if not hasattr(type(obj), "__crm_label__"):
        return
    from .validation import active_rows, error_key, fields_changed

    model = type(obj).__name__
    if model not in cache:
        cache[model] = active_rows(session, DuplicateRule, model)
    errors: dict[str, list[str]] = {}
    for rule in cache[model]:
        if not new and not fields_changed(obj, {rule.field}):
            continue
        for match in find(session, obj, rule):
            if match.block:
                errors.setdefault(error_key(type(obj), rule.field), []).append(message(match))
            else:
                session.info.setdefault(WARNINGS_KEY, []).append(message(match))
    if errors:
        raise FieldError(errors)


def pop_warnings(session: Session) -> list[str]:
    """The warnings the last writes left (each once)."""
    return list(dict.fromkeys(session.info.pop(WARNINGS_KEY, [])))


def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    from .validation import each_written

    each_written(session, check)


def _after_rollback(session: Session, _previous: Any = None) -> None:
    session.info.pop(WARNINGS_KEY, None)


def install() -> None:
    """Apply duplicate rules before every flush (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "after_soft_rollback", _after_rollback)
