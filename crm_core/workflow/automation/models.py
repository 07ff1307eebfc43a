"""Automation rules, their version history, the run log and the clocks of timed rules.

A rule (``AutomationRule``) names a record type, a trigger, conditions and a list of actions.
Every saved change of its definition adds an ``AutomationRuleVersion``. Each execution is an
``AutomationRun``, unique per rule and trigger key (an event, a record's date, a schedule
slot), which is what makes a redelivered event or a restarted scheduler neither repeat nor
lose an action. ``AutomationClock`` keeps how far each timed rule has looked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ...db import TimestampMixin, utcnow
from ...lowcode import conditions as cond
from ...lowcode.picklists import label_in_language

#: When a rule runs.
TRIGGERS = {
    "event": _l("When an event happens"),
    "field_change": _l("When a field changes"),
    "relative_time": _l("At a time relative to a date field"),
    "schedule": _l("On a schedule"),
}
#: How a run ended.
OUTCOMES = {
    "done": _l("Done"),
    "retry": _l("Failed, will retry"),
    "failed": _l("Failed"),
    "loop": _l("Stopped: loop"),
    "running": _l("Running"),
}


class AutomationRule(TimestampMixin, Model):
    """An automation rule (自动化规则).

    ``trigger`` is one of :data:`TRIGGERS`: ``event`` runs on ``event_type``;
    ``field_change`` when ``field`` changes on a record of ``model`` (created or updated);
    ``relative_time`` ``offset_days`` after (negative: before) the date in ``field``;
    ``schedule`` every day in ``days`` at ``time_of_day`` (UTC+zone of the assignment
    setting) for every record that meets the conditions. ``actions`` is
    ``[{"type": name, "params": {key: value}}, …]``.
    """

    __tablename__ = "crm_automation_rule"
    __crm_event__ = "automation_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    label_zh: Mapped[str] = mapped_column(String(100), nullable=False)
    label_en: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    position: Mapped[int] = mapped_column(Integer, default=100, nullable=False)
    trigger: Mapped[str] = mapped_column(String(20), nullable=False)
    event_type: Mapped[str | None] = mapped_column(String(64))
    field: Mapped[str | None] = mapped_column(String(80))
    offset_days: Mapped[int | None] = mapped_column(Integer)
    time_of_day: Mapped[str | None] = mapped_column(String(5))
    days: Mapped[str | None] = mapped_column(String(20))
    join: Mapped[str] = mapped_column(String(3), default="all", nullable=False)
    conditions: Mapped[Any] = mapped_column(JSON, nullable=True)
    actions: Mapped[Any] = mapped_column(JSON, nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)

    __table_args__ = (Index("ix_crm_automation_rule_trigger", "active", "trigger"),)

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return label_in_language(self.label_zh, self.label_en)

    def parsed(self) -> list[cond.Condition]:
        return [cond.Condition(**c) for c in self.conditions or []]


class AutomationRuleVersion(Model):
    """A rule's whole definition as saved (version 1, 2, …), and who saved it."""

    __tablename__ = "crm_automation_rule_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(
        ForeignKey("crm_automation_rule.id", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    definition: Mapped[Any] = mapped_column(JSON, nullable=False)
    saved_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    __table_args__ = (UniqueConstraint("rule_id", "number", name="uq_crm_automation_rule_version"),)


class AutomationRun(Model):
    """One execution of a rule on one record: outcome, duration, what each action did, the
    error. ``trigger_key`` (``event:42``, ``date:2026-12-01``, ``slot:2026-11-27T09:00``)
    is unique per rule and record, so the same trigger never runs twice."""

    __tablename__ = "crm_automation_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(
        ForeignKey("crm_automation_rule.id", ondelete="CASCADE"), nullable=False
    )
    rule_version: Mapped[int] = mapped_column(Integer, nullable=False)
    trigger_key: Mapped[str] = mapped_column(String(80), nullable=False)
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    record_id: Mapped[int] = mapped_column(Integer, nullable=False)
    event_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    #: What each action did (or, for a failed run, did before the failure rolled it back).
    results: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    #: The rules whose runs led to this one (the loop guard's chain).
    cause: Mapped[Any] = mapped_column(JSON, nullable=True)

    rule = relationship("AutomationRule")

    __table_args__ = (
        UniqueConstraint(
            "rule_id", "record_id", "trigger_key", name="uq_crm_automation_run_trigger"
        ),
        Index("ix_crm_automation_run_rule", "rule_id", "started_at"),
        Index("ix_crm_automation_run_due", "status", "next_attempt_at"),
    )


class AutomationClock(Model):
    """How far a timed rule has looked: dates and schedule slots up to ``checked_until`` are
    handled. Not audited: it moves every minute."""

    __tablename__ = "crm_automation_clock"

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("crm_automation_rule.id", ondelete="CASCADE"), primary_key=True
    )
    checked_until: Mapped[datetime] = mapped_column(DateTime, nullable=False)
