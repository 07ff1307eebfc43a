"""Timed rules, run by the ``core.automation`` job in the ``crm scheduler`` process.

A ``relative_time`` rule fires for each record whose date field plus ``offset_days`` has
come (``-3``: three days before ``expected_close``). A ``schedule`` rule fires at
``time_of_day`` on its ``days`` (in the assignment time zone) for every record meeting its
conditions; slots missed while no scheduler ran are run once, not once each.

Each rule's clock says up to when it has looked. It moves on only after every record of the
window ran (or was logged as failed, to be retried); a run's trigger key (``date:…``,
``slot:…``) is unique per rule and record. So a scheduler killed halfway and started again
runs the rest of the window, and what already ran is not run again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.types import Date, DateTime

from ...db import model_class, utcnow
from ...db import session as current_session
from ...security.rules import unrestricted
from ...settings.store import get_setting
from ..assignment import hours
from . import rulecache
from .engine import execute
from .models import AutomationClock, AutomationRun
from .rulecache import RuleDef

PAGE = 500


def run_timed(now: datetime | None = None) -> dict[str, int]:
    """Run every active timed rule's due records; counts of runs by rule kind."""
    session = current_session()
    now = now or utcnow()
    counts = {"relative_time": 0, "schedule": 0}
    for rule in rulecache.active(session):
        if rule.trigger not in counts:
            continue
        clock = _clock(session, rule, now)
        if clock is None:
            continue  # first sight of the rule: it starts from now
        since = clock.checked_until
        if rule.trigger == "relative_time":
            counts["relative_time"] += _relative(session, rule, since, now)
        else:
            counts["schedule"] += _scheduled(session, rule, since, now)
        session.execute(
            AutomationClock.__table__.update()
            .where(AutomationClock.rule_id == rule.id)
            .values(checked_until=now)
        )
        session.commit()
    return counts


def _clock(session: Session, rule: RuleDef, now: datetime) -> AutomationClock | None:
    clock = session.get(AutomationClock, rule.id, populate_existing=True)
    if clock is None:
        session.add(AutomationClock(rule_id=rule.id, checked_until=now))
        session.commit()
        return None
    return clock


# --------------------------------------------------------------------------- relative time


def date_column(model: type, field: str | None) -> Any:
    """The date or date-and-time column ``field`` of ``model``, else ``None``."""
    column: Any = inspect(model).columns.get(field or "")
    if column is None or not isinstance(column.type, Date | DateTime):
        return None
    return column


def _relative(session: Session, rule: RuleDef, since: datetime, now: datetime) -> int:
    """Records whose ``field + offset`` fell in ``(since, now]``."""
    cls = model_class(rule.model)
    column = date_column(cls, rule.field) if cls is not None else None
    if cls is None or column is None:
        return 0
    shift = timedelta(days=rule.offset_days)
    low, high = since - shift, now - shift
    if not isinstance(column.type, DateTime):
        low, high = low.date(), high.date()  # type: ignore[assignment]
    attr = getattr(cls, column.key)
    where = [attr > low, attr <= high]
    ran = 0
    for record in _pages(session, cls, where):
        value = getattr(record, column.key)
        key = f"date:{value.isoformat() if isinstance(value, date) else value}"
        ran += _fire(session, rule, record, key)
    return ran


# --------------------------------------------------------------------------- schedule


def last_slot(rule: RuleDef, since: datetime, now: datetime) -> datetime | None:
    """The latest time in ``(since, now]`` (UTC) at which the schedule is due, if any."""
    at = hours.parse_time(rule.time_of_day)
    if at is None:
        return None
    tz = hours.zone(get_setting(hours.TIMEZONE_SETTING))
    allowed = hours.parse_days(rule.days)
    local_now = hours.local(now, tz)
    for back in range(0, 8):
        day = local_now.date() - timedelta(days=back)
        if allowed and day.isoweekday() not in allowed:
            continue
        slot = datetime.combine(day, at, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
        if slot <= now:
            return slot if slot > since else None
    return None


def _scheduled(session: Session, rule: RuleDef, since: datetime, now: datetime) -> int:
    slot = last_slot(rule, since, now)
    cls = model_class(rule.model)
    if slot is None or cls is None:
        return 0
    where: list[Any] = []
    if "active" in inspect(cls).columns:
        where.append(cls.active.is_(True))  # type: ignore[attr-defined]
    key = f"slot:{slot:%Y-%m-%dT%H:%M}"
    return sum(_fire(session, rule, record, key) for record in _pages(session, cls, where))


# --------------------------------------------------------------------------- running


def _pages(session: Session, cls: type, where: list[Any]) -> Any:
    """The records of ``cls`` matching ``where``, by id in pages (keyset)."""
    last = 0
    pk = cls.id  # type: ignore[attr-defined]
    while True:
        with unrestricted():
            ids = session.scalars(
                select(pk).where(*where, pk > last).order_by(pk).limit(PAGE)
            ).all()
        session.commit()
        if not ids:
            return
        for record_id in ids:
            with unrestricted():
                record = session.get(cls, record_id, populate_existing=True)
            if record is not None:
                yield record
        last = ids[-1]


def _fire(session: Session, rule: RuleDef, record: Any, key: str) -> int:
    done = session.scalar(
        select(AutomationRun.id).where(
            AutomationRun.rule_id == rule.id,
            AutomationRun.record_id == record.id,
            AutomationRun.trigger_key == key,
        )
    )
    if done is not None:
        return 0
    with unrestricted():
        holds = rule.holds(record)
    if not holds:
        return 0
    return 1 if execute(rule, record, key).status != "skipped" else 0
