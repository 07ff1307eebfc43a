"""Assigning records by assignment rules: the public API.

:func:`assign` picks the owner of a record by the first active rule of its model whose
conditions hold (or by a rule the caller names), writes the owner — and the assignee's team,
when the rule says so — through the ORM, so the change is audited and record rules see it,
and says who was picked and why. :func:`preview` says the same without writing anything or
moving any rule's turn. Automation rules call both.

A rule's members are the active users of its team (and sub-teams) and of its user list, in
user-id order. ``round_robin`` gives the record to the first member after the one who got the
previous record; ``least_loaded`` to the member owning the fewest active records of the model
(ties in turn order). Members at ``capacity`` are skipped. Outside the rule's working hours,
with no member able to take it, the rule either hands over to the next matching rule or
leaves the record in the shared pool (``when_unavailable``).

The turn is kept per rule in ``crm_assignment_turn``; :func:`assign` locks that row (an
``UPDATE`` first, then ``SELECT … FOR UPDATE``) so parallel assignments take turns one after
the other, and the lock lasts until the caller commits: commit soon after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...db import utcnow
from ...errors import PermissionDenied
from ...lowcode import conditions as cond
from ...security.rules import UserRules, current_rules, grant
from ...settings.store import get_setting
from . import hours
from .members import Member, loads, members, owner_columns
from .models import AssignmentRule, AssignmentTurn

__all__ = ["AssignmentResult", "Candidate", "assign", "matching_rules", "preview"]

#: Why nobody was picked, by outcome.
OUTCOMES = {
    "assigned": _l("Assigned"),
    "no_rule": _l("No active assignment rule matches this record."),
    "no_members": _l("The rule names no active user."),
    "outside_hours": _l("Outside the rule's working hours."),
    "over_capacity": _l("Every member owns as many records as the rule allows."),
}


@dataclass(frozen=True)
class Candidate:
    """A member of a rule as the rule saw them: their load and whether they could take a
    record (``reason`` says why not)."""

    user_id: int
    name: str
    load: int | None
    available: bool
    reason: str = ""


@dataclass(frozen=True)
class AssignmentResult:
    """What an assignment did (or, from :func:`preview`, would do).

    ``outcome`` is ``assigned``, ``no_rule``, ``no_members``, ``outside_hours`` or
    ``over_capacity``; ``reason`` says it in the user's language. ``rule_id``/``rule_name``
    name the rule that decided (the last one tried when nobody was picked), ``pooled`` is
    true when that rule left the record in the shared pool. ``candidates`` are that rule's
    members as it saw them.
    """

    outcome: str
    reason: str
    user_id: int | None = None
    user_name: str = ""
    team_id: int | None = None
    rule_id: int | None = None
    rule_name: str = ""
    pooled: bool = False
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)

    @property
    def assigned(self) -> bool:
        return self.user_id is not None


def matching_rules(session: Session, record: Any) -> list[AssignmentRule]:
    """The active rules of ``record``'s model whose conditions hold for it, in order."""
    with session.no_autoflush:
        rules = session.scalars(
            select(AssignmentRule)
            .where(
                AssignmentRule.model == type(record).__name__,
                AssignmentRule.active.is_(True),
            )
            .order_by(AssignmentRule.position, AssignmentRule.id)
        )
        return [r for r in rules if cond.all_hold(record, r.parsed(), r.join)]


def assign(
    session: Session,
    record: Any,
    *,
    rule: AssignmentRule | None = None,
    now: datetime | None = None,
) -> AssignmentResult:
    """Give ``record`` an owner by the first matching active rule of its model (or by
    ``rule``, whose conditions are then not checked) and move that rule's turn on.

    The owner (and, with the rule's ``set_team``, the assignee's team) is set on ``record``
    in ``session``; the caller commits. A rule that leaves the record in the shared pool
    clears its owner when the model has a pool. ``now`` (UTC) is for working hours; default
    the current time. ``TypeError`` when the model has no owner column;
    :class:`~crm_core.errors.PermissionDenied` when the signed-in user may not change the
    record as it is. The assignment itself is the rule's decision, so the user's record
    rules do not stop the new owner from being someone else.
    """
    spec = owner_columns(type(record))
    _check_may_change(record)
    with session.no_autoflush:
        result = _decide(session, record, rule, now or utcnow(), advance=True)
    with session.no_autoflush:
        if result.assigned:
            set_link(session, record, spec.owner or "", result.user_id)
            if result.team_id is not None and spec.team:
                set_link(session, record, spec.team, result.team_id)
            grant(session, record)
        elif result.pooled and spec.pool:
            set_link(session, record, spec.owner or "", None)
            grant(session, record)
    return result


def preview(
    session: Session,
    record: Any,
    rule: AssignmentRule | None = None,
    *,
    now: datetime | None = None,
) -> AssignmentResult:
    """What :func:`assign` would do now, without writing the record or moving any turn."""
    owner_columns(type(record))
    with session.no_autoflush:
        return _decide(session, record, rule, now or utcnow(), advance=False)


# --------------------------------------------------------------------------- deciding


def _decide(
    session: Session, record: Any, rule: AssignmentRule | None, now: datetime, advance: bool
) -> AssignmentResult:
    rules = [rule] if rule is not None else matching_rules(session, record)
    result = AssignmentResult("no_rule", str(OUTCOMES["no_rule"]))
    for candidate_rule in rules:
        result = _pick(session, type(record), candidate_rule, now, advance)
        if result.assigned or result.pooled:
            break
    return result


def _pick(
    session: Session, cls: type, rule: AssignmentRule, now: datetime, advance: bool
) -> AssignmentResult:
    """The member ``rule`` gives the next record to, or why nobody."""
    turn = _lock_turn(session, rule) if advance else _read_turn(session, rule)
    people = members(session, rule)
    tz = hours.zone(get_setting(hours.TIMEZONE_SETTING))
    in_hours = hours.within(rule.days, rule.start_time, rule.end_time, hours.local(now, tz))
    counted = rule.capacity is not None or rule.strategy == "least_loaded"
    load = loads(session, cls, [m.user_id for m in people if m.active]) if counted else {}
    candidates = tuple(_candidate(m, rule, load, counted, in_hours) for m in people)
    able = [c for c in candidates if c.available]

    def nobody(outcome: str) -> AssignmentResult:
        return AssignmentResult(
            outcome,
            str(OUTCOMES[outcome]),
            rule_id=rule.id,
            rule_name=rule.name,
            pooled=rule.when_unavailable == "pool",
            candidates=candidates,
        )

    if not any(m.active for m in people):
        return nobody("no_members")
    if not in_hours:
        return nobody("outside_hours")
    if not able:
        return nobody("over_capacity")
    last = turn.last_user_id if turn is not None else None
    order = sorted(able, key=lambda c: (last is not None and c.user_id <= last, c.user_id))
    chosen = order[0]
    if rule.strategy == "least_loaded":
        chosen = min(order, key=lambda c: c.load or 0)
    if advance and turn is not None:
        turn.last_user_id = chosen.user_id
        turn.assigned = (turn.assigned or 0) + 1
    member = next(m for m in people if m.user_id == chosen.user_id)
    team_id = None
    if rule.set_team:
        team_id = member.team_id if member.team_id is not None else rule.team_id
    return AssignmentResult(
        "assigned",
        str(OUTCOMES["assigned"]),
        user_id=chosen.user_id,
        user_name=chosen.name,
        team_id=team_id,
        rule_id=rule.id,
        rule_name=rule.name,
        candidates=candidates,
    )


def _candidate(
    member: Member, rule: AssignmentRule, load: dict[int, int], counted: bool, in_hours: bool
) -> Candidate:
    owned = load.get(member.user_id, 0) if counted and member.active else None
    if not member.active:
        reason = str(_l("Inactive user"))
    elif rule.capacity is not None and (owned or 0) >= rule.capacity:
        reason = str(_l("At capacity (%(count)s)", count=rule.capacity))
    elif not in_hours:
        reason = str(_l("Outside working hours"))
    else:
        reason = ""
    return Candidate(member.user_id, member.name, owned, reason == "", reason)


# --------------------------------------------------------------------------- the turn


def _read_turn(session: Session, rule: AssignmentRule) -> AssignmentTurn | None:
    if rule.id is None:
        return None
    return session.scalar(select(AssignmentTurn).where(AssignmentTurn.rule_id == rule.id))


def _lock_turn(session: Session, rule: AssignmentRule) -> AssignmentTurn | None:
    """The rule's turn row, locked until the transaction ends. The ``UPDATE`` takes the lock
    on every backend (on SQLite the database's write lock, so a second writer waits before it
    reads); ``FOR UPDATE`` then reads the row as the last committed assignment left it."""
    if rule.id is None:
        return None
    touched = session.execute(
        update(AssignmentTurn)
        .where(AssignmentTurn.rule_id == rule.id)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not getattr(touched, "rowcount", 0):
        try:
            with session.begin_nested():
                session.add(AssignmentTurn(rule_id=rule.id, assigned=0))
        except IntegrityError:
            pass  # a parallel assignment made it first; the select below waits for it
    query = (
        select(AssignmentTurn)
        .where(AssignmentTurn.rule_id == rule.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalar(query)


# --------------------------------------------------------------------------- writing


def _check_may_change(record: Any) -> None:
    """A user may only have records assigned that they may change as they are now."""
    state = inspect(record)
    if not state.persistent:
        return
    rules = current_rules()
    if rules is None:
        return
    if not isinstance(rules, UserRules) or not rules.may_write(record, before=True):
        raise PermissionDenied(str(_l("You may not change this record.")))


def set_link(session: Session, record: Any, column: str, value: int | None) -> None:
    """Set ``column`` to ``value``, and the many-to-one relationship it backs (which would
    otherwise win at flush, as a form's ``owner`` does) to the matching object."""
    mapper = inspect(type(record))
    setattr(record, column, value)
    for rel in mapper.relationships:
        if rel.direction.name == "MANYTOONE" and any(c.key == column for c in rel.local_columns):
            target = None if value is None else session.get(rel.mapper.class_, value)
            setattr(record, rel.key, target)
