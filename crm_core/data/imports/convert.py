"""Cells as people type them in spreadsheets, into the values columns store.

Each function takes the cell's text (never empty: blank cells are no value) and returns the
value or raises ``ValueError`` with the user's message. Dates come as 2026-11-26, 2026/11/26,
2026.11.26, 2026年11月26日 or 20261126; yes/no as 是/否, Y/N, true/false, 1/0, √/×; numbers
with thousands separators and a currency sign.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _

_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_TIME = re.compile(r"^(\d{1,2})[:：时](\d{1,2})(?:[:：分](\d{1,2})秒?)?$")
YES = frozenset({"是", "y", "yes", "true", "1", "√", "✓", "on", "有", "t"})
NO = frozenset({"否", "n", "no", "false", "0", "×", "✗", "off", "无", "f"})
_MONEY = re.compile(r"[,，\s¥￥$元]")


def to_date(text: str) -> date:
    text = text.strip()
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    try:
        if match:
            return date(*(int(part) for part in match.groups()))
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(_("Enter a date as 2026-11-26.")) from None


def to_datetime(text: str) -> datetime:
    text = text.strip().replace("T", " ")
    day, _sep, time_part = text.partition(" ")
    when = to_date(day)
    if not time_part.strip():
        return datetime(when.year, when.month, when.day)
    match = _TIME.match(time_part.strip())
    if not match:
        try:
            return datetime.fromisoformat(text).replace(tzinfo=None)
        except ValueError:
            raise ValueError(_("Enter a date and time as 2026-11-26 09:30.")) from None
    hour, minute, second = (int(p) if p else 0 for p in match.groups())
    try:
        return datetime(when.year, when.month, when.day, hour, minute, second)
    except ValueError:
        raise ValueError(_("Enter a date and time as 2026-11-26 09:30.")) from None


def to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in YES:
        return True
    if lowered in NO:
        return False
    raise ValueError(_("Enter 是 or 否 (yes or no)."))


def to_decimal(text: str, places: int | None = None) -> Decimal:
    try:
        value = Decimal(_MONEY.sub("", text))
    except InvalidOperation:
        raise ValueError(_("Enter a number.")) from None
    if not value.is_finite():
        raise ValueError(_("Enter a number."))
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    return value


def to_int(text: str) -> int:
    value = to_decimal(text)
    if value != value.to_integral_value():
        raise ValueError(_("Enter a whole number."))
    if abs(value) >= 2**31:
        raise ValueError(_("Number out of range"))
    return int(value)


def to_text(text: str, length: int | None) -> str:
    value = text.strip()
    if length and len(value) > length:
        raise ValueError(_("At most %(limit)s characters.", limit=length))
    return value


SPLIT = re.compile(r"\s*[,，;；、|]\s*")


def split_list(text: str) -> list[str]:
    """A cell holding several values (标签: 重点客户，展会2026)."""
    return [part for part in SPLIT.split(text.strip()) if part]
