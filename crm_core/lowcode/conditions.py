"""Field tests on a record, as admins write them: ``industry eq 制造业``.

A condition names a field of the record — a column (``credit_limit``), a custom field
(``custom__grade``) or a column of a record it points to (``customer.industry``) — an operator
and a value. Values are compared in the field's type: numbers as numbers, dates as dates.
Validation rules, assignment rules, approvals and automation rules use them.

Operators: ``eq``, ``ne``, ``gt``, ``ge``, ``lt``, ``le``, ``in`` (comma-separated values),
``contains``, ``starts_with``, ``empty``, ``not_empty``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect
from sqlalchemy.types import Boolean, Date, DateTime, Integer, Numeric

from .fields import custom_column
from .live import PREFIX, current

OPERATORS = {
    "eq": _l("equal to"),
    "ne": _l("not equal to"),
    "gt": _l("greater than"),
    "ge": _l("at least"),
    "lt": _l("smaller than"),
    "le": _l("at most"),
    "in": _l("one of"),
    "contains": _l("contains"),
    "starts_with": _l("starts with"),
    "empty": _l("is empty"),
    "not_empty": _l("is not empty"),
}
UNARY = ("empty", "not_empty")
_LINE = re.compile(r"^\s*(?P<field>[A-Za-z_][\w.]*)\s+(?P<op>[a-z_]+)(?:\s+(?P<value>.*?))?\s*$")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str = ""

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.value}".rstrip()


def parse(text: str) -> list[Condition]:
    """Conditions from lines ``field op value``; ``ValueError`` naming the bad line."""
    out = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None or match["op"] not in OPERATORS:
            raise ValueError(str(_l("Line %(n)s is not 'field operator value'.", n=number)))
        value = match["value"] or ""
        if match["op"] not in UNARY and value == "":
            raise ValueError(str(_l("Line %(n)s has no value.", n=number)))
        out.append(Condition(match["field"], match["op"], value))
    return out


def as_text(conditions: list[dict[str, Any]] | None) -> str:
    return "\n".join(str(Condition(**c)) for c in conditions or [])


def as_data(conditions: list[Condition]) -> list[dict[str, str]]:
    return [{"field": c.field, "op": c.op, "value": c.value} for c in conditions]


# --------------------------------------------------------------------------- fields


def field_kind(model: type, field: str) -> str | None:
    """How a field's values compare (``number``, ``date``, ``datetime``, ``bool``, ``text``,
    ``list``), or ``None`` when ``model`` has no such field."""
    if field.startswith(PREFIX):
        if not custom_column(model):
            return None
        defn = next((d for d in current(model) if d.name == field[len(PREFIX) :]), None)
        if defn is None:
            return None
        return {
            "integer": "number",
            "decimal": "number",
            "money": "number",
            "user": "number",
            "customer": "number",
            "date": "date",
            "datetime": "datetime",
            "bool": "bool",
            "multi_choice": "list",
        }.get(defn.kind, "text")
    head, _dot, rest = field.partition(".")
    mapper: Any = inspect(model)
    if rest:
        rel = mapper.relationships.get(head)
        if rel is None or rel.direction.name != "MANYTOONE" or "." in rest:
            return None
        return field_kind(rel.mapper.class_, rest)
    column = mapper.columns.get(field)
    if column is None:
        return None
    kind = column.type
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, DateTime):
        return "datetime"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, Integer | Numeric):
        return "number"
    return "text"


def problems(model: type, conditions: list[Condition]) -> list[str]:
    """What is wrong with ``conditions`` on ``model`` (unknown fields, values of the wrong
    type), each in the user's language."""
    out = []
    for c in conditions:
        kind = field_kind(model, c.field)
        if kind is None:
            out.append(str(_l("There is no field %(field)s.", field=c.field)))
            continue
        if c.op in ("gt", "ge", "lt", "le") and kind not in ("number", "date", "datetime"):
            out.append(str(_l("%(field)s cannot be compared by size.", field=c.field)))
            continue
        if c.op not in UNARY:
            try:
                for part in _parts(c):
                    coerce(kind, part)
            except ValueError:
                out.append(
                    str(_l("%(value)s is not a value of %(field)s.", value=c.value, field=c.field))
                )
    return out


def not_a_value(value: Any, field: str) -> str:
    return str(_l("%(value)s is not a value of %(field)s.", value=value, field=field))


def value_of(obj: Any, field: str) -> Any:
    """The value of ``field`` on ``obj`` (``None`` when a link in the path is empty)."""
    if field.startswith(PREFIX):
        column = custom_column(type(obj))
        return ((getattr(obj, column) if column else None) or {}).get(field[len(PREFIX) :])
    head, _dot, rest = field.partition(".")
    if rest:
        related = getattr(obj, head, None)
        return None if related is None else value_of(related, rest)
    return getattr(obj, field, None)


def coerce(kind: str, raw: Any) -> Any:
    """``raw`` (typed by an admin, or stored) as a value of ``kind`` for comparison."""
    if raw is None or raw == "":
        return None
    if kind == "number":
        try:
            return Decimal(str(raw).replace(",", "").strip())
        except InvalidOperation:
            raise ValueError(raw) from None
    if kind == "date":
        return raw.date() if isinstance(raw, datetime) else date.fromisoformat(str(raw)[:10])
    if kind == "datetime":
        if isinstance(raw, datetime):
            return raw.replace(tzinfo=None)
        if isinstance(raw, date):
            return datetime(raw.year, raw.month, raw.day)
        return datetime.fromisoformat(str(raw)).replace(tzinfo=None)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes", "y", "是"):
            return True
        if text in ("false", "0", "no", "n", "否"):
            return False
        raise ValueError(raw)
    return str(raw)


def _parts(c: Condition) -> list[str]:
    return [p.strip() for p in c.value.split(",")] if c.op == "in" else [c.value]


@dataclass(frozen=True)
class Test:
    """A condition made ready for one model: its field's kind and its values coerced once
    (``targets`` is ``None`` when a value is not of the field's kind: the test never holds)."""

    condition: Condition
    kind: str
    targets: tuple[Any, ...] | None


def prepare(model: type, c: Condition) -> Test:
    """``c`` ready to test many records of ``model`` (rules that run on every event)."""
    kind = field_kind(model, c.field) or "text"
    if kind == "list" or c.op in UNARY:
        return Test(c, kind, tuple(_parts(c)))
    try:
        return Test(c, kind, tuple(coerce(kind, part) for part in _parts(c)))
    except ValueError:
        return Test(c, kind, None)


def passes(obj: Any, test: Test) -> bool:
    """Whether ``obj`` passes a prepared condition."""
    c, kind = test.condition, test.kind
    raw = value_of(obj, c.field)
    empty = raw is None or raw == "" or raw == []
    if c.op == "empty":
        return empty
    if c.op == "not_empty":
        return not empty
    if empty:
        return c.op == "ne"
    if kind == "list":
        values = [str(v) for v in raw] if isinstance(raw, list) else [str(raw)]
        wanted = test.targets or ()
        if c.op in ("eq", "contains", "in"):
            return any(v in values for v in wanted)
        if c.op == "ne":
            return not any(v in values for v in wanted)
        return False
    if test.targets is None:
        return False
    try:
        value = coerce(kind, raw)
    except ValueError:
        return False
    targets = test.targets
    target = targets[0]
    if c.op == "eq":
        return bool(value == target)
    if c.op == "ne":
        return bool(value != target)
    if c.op == "in":
        return value in targets
    if c.op == "contains":
        return str(target).lower() in str(value).lower()
    if c.op == "starts_with":
        return str(value).lower().startswith(str(target).lower())
    try:
        return bool(
            {
                "gt": value > target,
                "ge": value >= target,
                "lt": value < target,
                "le": value <= target,
            }[c.op]
        )
    except TypeError:
        return False


def holds(obj: Any, c: Condition) -> bool:
    """Whether ``obj`` passes condition ``c``."""
    return passes(obj, prepare(type(obj), c))


def all_hold(obj: Any, conditions: list[Condition], join: str = "all") -> bool:
    """Whether ``obj`` passes the conditions: every one (``all``) or one of them (``any``).
    No conditions: always."""
    if not conditions:
        return True
    tests = (holds(obj, c) for c in conditions)
    return any(tests) if join == "any" else all(tests)
