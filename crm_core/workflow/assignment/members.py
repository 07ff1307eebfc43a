"""Who a rule may give records to, and how many active records each of them owns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from ...org.models import Team, UserProfile
from ...security.rules import unrestricted
from ...specs import RuleColumns
from .models import AssignmentRule, assignment_rule_user


@dataclass(frozen=True)
class Member:
    """A user a rule names (through its team or its list), with the team they work in."""

    user_id: int
    name: str
    active: bool
    team_id: int | None


def owner_columns(cls: type) -> RuleColumns:
    """The record-rules spec of ``cls``; ``TypeError`` when it has no owner column."""
    spec = getattr(cls, "__crm_record_rules__", None)
    if not isinstance(spec, RuleColumns) or not spec.owner:
        raise TypeError(f"{cls.__name__} has no owner column to assign")
    return spec


def assignable_models() -> dict[str, type]:
    """Every mapped model with an owner column, by class name."""
    from flask_appbuilder import Model

    found = {}
    for mapper in Model.registry.mappers:
        spec = getattr(mapper.class_, "__crm_record_rules__", None)
        if isinstance(spec, RuleColumns) and spec.owner:
            found[mapper.class_.__name__] = mapper.class_
    return found


def team_ids(session: Session, rule: AssignmentRule) -> list[int]:
    """The rule's team, and with ``include_subteams`` every active team below it."""
    if rule.team_id is None:
        return []
    if not rule.include_subteams:
        return [rule.team_id]
    path = session.scalar(select(Team.path).where(Team.id == rule.team_id))
    if not path:
        return [rule.team_id]
    below = select(Team.id).where(Team.path.startswith(path), Team.active.is_(True))
    return sorted({rule.team_id, *session.scalars(below)})


def members(session: Session, rule: AssignmentRule) -> list[Member]:
    """Every user the rule names, inactive ones included, in user-id order (the round-robin
    order). A user both in the team and on the list counts once."""
    teams = team_ids(session, rule)
    named = select(assignment_rule_user.c.user_id).where(assignment_rule_user.c.rule_id == rule.id)
    ids = set(session.scalars(named)) if rule.id is not None else set()
    if teams:
        in_teams = select(UserProfile.user_id).where(UserProfile.team_id.in_(teams))
        ids.update(session.scalars(in_teams))
    if not ids:
        return []
    rows = session.execute(
        select(User.id, User.first_name, User.last_name, User.username, User.active)
        .where(User.id.in_(sorted(ids)))
        .order_by(User.id)
    ).all()
    profile_teams: dict[int, int | None] = {
        row.user_id: row.team_id
        for row in session.execute(
            select(UserProfile.user_id, UserProfile.team_id).where(
                UserProfile.user_id.in_(sorted(ids))
            )
        )
    }
    from ...org.display import display_user

    return [
        Member(
            user_id=row.id,
            name=display_user(row) or row.username,
            active=bool(row.active),
            team_id=profile_teams.get(row.id),
        )
        for row in rows
    ]


def loads(session: Session, cls: type, user_ids: list[int]) -> dict[int, int]:
    """How many active records of ``cls`` each user owns, counted in SQL (one grouped query on
    the indexed owner column). These are facts about the team, not records shown to the
    user, so the signed-in user's record rules do not narrow them."""
    if not user_ids:
        return {}
    spec = owner_columns(cls)
    owner: Any = getattr(cls, spec.owner or "")
    query = select(owner, func.count()).where(owner.in_(user_ids)).group_by(owner)
    if "active" in inspect(cls).columns:
        query = query.where(cls.active.is_(True))  # type: ignore[attr-defined]
    with unrestricted():
        return {int(user): int(count) for user, count in session.execute(query).all()}
