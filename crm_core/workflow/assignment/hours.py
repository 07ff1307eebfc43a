"""Working hours of an assignment rule: days of the week and a time range, in a time zone."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import lazy_gettext as _l

log = logging.getLogger(__name__)

TIMEZONE_SETTING = "assignment.timezone"
DEFAULT_TIMEZONE = "Asia/Shanghai"
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_days(text: str | None) -> list[int]:
    """ISO weekdays (1 = Monday … 7 = Sunday) from ``1,2,3,4,5`` or ``1-5``; empty: every
    day. ``ValueError`` with a message for the user when the text is not such a list."""
    days: set[int] = set()
    for part in (text or "").replace("，", ",").split(","):
        part = part.strip()
        if not part:
            continue
        first, _dash, last = part.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise ValueError(str(_l("Days are numbers from 1 (Monday) to 7 (Sunday)."))) from None
        if not 1 <= low <= high <= 7:
            raise ValueError(str(_l("Days are numbers from 1 (Monday) to 7 (Sunday).")))
        days.update(range(low, high + 1))
    return sorted(days)


def normal_days(text: str | None) -> str | None:
    """``text`` as stored: ``1,2,3,4,5`` (``None`` for every day)."""
    days = parse_days(text)
    return ",".join(str(d) for d in days) if days else None


def parse_time(text: str | None) -> time | None:
    """``09:00`` as a time; ``None`` when empty; ``ValueError`` when not ``HH:MM``."""
    text = (text or "").strip()
    if not text:
        return None
    match = _TIME.match(text)
    if match is None:
        raise ValueError(str(_l("%(value)s is not a time like 09:00.", value=text)))
    return time(int(match[1]), int(match[2]))


def zone(name: str | None) -> ZoneInfo:
    """The time zone called ``name``; the default one (logged) when there is no such zone."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("unknown time zone %r in %s, using %s", name, TIMEZONE_SETTING, DEFAULT_TIMEZONE)
        return ZoneInfo(DEFAULT_TIMEZONE)


def local(now: datetime, tz: ZoneInfo) -> datetime:
    """``now`` (naive: UTC, as the database stores times) in ``tz``."""
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return aware.astimezone(tz)


def within(days: str | None, start: str | None, end: str | None, at: datetime) -> bool:
    """Whether local time ``at`` falls in the working hours. A range whose end is before its
    start runs overnight (22:00–06:00); no start means from midnight, no end until midnight."""
    allowed = parse_days(days)
    if allowed and at.isoweekday() not in allowed:
        return False
    begin, finish = parse_time(start), parse_time(end)
    if begin is None and finish is None:
        return True
    now = at.time().replace(tzinfo=None)
    begin = begin or time(0, 0)
    if finish is None:
        return now >= begin
    if finish >= begin:
        return begin <= now < finish
    return now >= begin or now < finish
