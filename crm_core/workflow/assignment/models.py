"""Assignment rules and the round-robin turn each rule keeps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from flask_appbuilder.security.sqla import models as _fab_models  # noqa: F401 - User
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ...db import utcnow
from ...lowcode import conditions as cond
from ...org import models as _org_models  # noqa: F401 - Team

STRATEGIES = {
    "round_robin": _l("Round-robin"),
    "least_loaded": _l("Least loaded"),
}
#: What a rule does when nobody it names may take the record now (all over capacity, outside
#: working hours, no active member).
WHEN_UNAVAILABLE = {
    "next_rule": _l("Try the next matching rule"),
    "pool": _l("Leave it in the shared pool"),
}

assignment_rule_user = Table(
    "crm_assignment_rule_user",
    Model.metadata,
    Column("rule_id", ForeignKey("crm_assignment_rule.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True),
)


class AssignmentRule(Model):
    """Which user gets a record of ``model`` whose conditions hold: a member of ``team`` (and
    of the teams below it, with ``include_subteams``) or one of ``users``, in turn
    (``round_robin``) or the one owning the fewest active records (``least_loaded``).

    ``capacity`` caps the active records a user may own; ``days`` (ISO weekdays, ``1,2,3,4,5``)
    and ``start_time``/``end_time`` (``09:00``) are the rule's working hours in the
    ``assignment.timezone`` setting's time zone.
    """

    __tablename__ = "crm_assignment_rule"
    __crm_audit__ = "assignment_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    position: Mapped[int] = mapped_column(Integer, default=100, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    join: Mapped[str] = mapped_column(String(3), default="all", nullable=False)
    conditions: Mapped[Any] = mapped_column(JSON, nullable=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("crm_team.id", ondelete="SET NULL"))
    include_subteams: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    strategy: Mapped[str] = mapped_column(String(20), default="round_robin", nullable=False)
    capacity: Mapped[int | None] = mapped_column(Integer)
    days: Mapped[str | None] = mapped_column(String(20))
    start_time: Mapped[str | None] = mapped_column(String(5))
    end_time: Mapped[str | None] = mapped_column(String(5))
    when_unavailable: Mapped[str] = mapped_column(String(10), default="next_rule", nullable=False)
    set_team: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )

    team = relationship("Team")
    users = relationship("User", secondary=assignment_rule_user, order_by="User.id")
    turn = relationship(
        "AssignmentTurn", uselist=False, cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (UniqueConstraint("model", "name", name="uq_crm_assignment_rule_name"),)

    def __str__(self) -> str:
        return self.name

    def parsed(self) -> list[cond.Condition]:
        """The rule's conditions."""
        return [cond.Condition(**c) for c in self.conditions or []]


class AssignmentTurn(Model):
    """Whose turn it is under a rule: the user picked last (a plain id, so a removed user
    only means "continue after that id"), and how many records the rule has assigned."""

    __tablename__ = "crm_assignment_turn"

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("crm_assignment_rule.id", ondelete="CASCADE"), primary_key=True
    )
    last_user_id: Mapped[int | None] = mapped_column(Integer)
    assigned: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )
