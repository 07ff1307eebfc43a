"""Assignment rules in configuration bundles (``crm config export|diff|import``).

Section ``assignment_rules``: ``{model: {rule name: settings}}``. A rule's team is named by its
place in the org tree (``华东大区 / 上海销售部``) and its users by login name, so a bundle moves
between instances whose ids differ.
"""

from __future__ import annotations

from typing import Any

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...lowcode import conditions as cond
from ...lowcode.bundle import ConfigSection
from ...lowcode.validation import JOINS
from ...org.models import Team
from . import hours
from .members import assignable_models
from .models import STRATEGIES, WHEN_UNAVAILABLE, AssignmentRule

SECTION = "assignment_rules"
#: Settings stored as they are written.
PLAIN = (
    "position",
    "active",
    "join",
    "conditions",
    "include_subteams",
    "strategy",
    "capacity",
    "days",
    "start_time",
    "end_time",
    "when_unavailable",
    "set_team",
)
KEYS = (*PLAIN, "team", "users")


def team_names(session: Session) -> dict[int, str]:
    """Every team's place in the tree, ``root / … / team``, by id (teams are few)."""
    teams = {t.id: t for t in session.scalars(select(Team))}
    out = {}
    for team in teams.values():
        ids = [int(i) for i in team.path.strip("/").split("/") if i] or [team.id]
        out[team.id] = " / ".join(teams[i].name for i in ids if i in teams)
    return out


def export_rules(session: Session) -> dict[str, Any]:
    names = team_names(session)
    out: dict[str, dict[str, Any]] = {}
    rows = session.scalars(
        select(AssignmentRule).order_by(
            AssignmentRule.model, AssignmentRule.position, AssignmentRule.id
        )
    )
    for rule in rows:
        entry = {key: getattr(rule, key) for key in PLAIN}
        entry["team"] = names.get(rule.team_id) if rule.team_id is not None else None
        entry["users"] = [u.username for u in rule.users]
        out.setdefault(rule.model, {})[rule.name] = entry
    return out


def _problems(model: type, settings: dict[str, Any]) -> list[str]:
    found = []
    for key, allowed in (
        ("strategy", STRATEGIES),
        ("when_unavailable", WHEN_UNAVAILABLE),
        ("join", JOINS),
    ):
        if key in settings and settings[key] not in allowed:
            found.append(f"{key} is one of {', '.join(allowed)}")
    try:
        parsed = [cond.Condition(**c) for c in settings.get("conditions") or []]
    except TypeError:
        return [*found, "conditions are a list of {field, op, value}"]
    found += cond.problems(model, parsed)
    try:
        hours.parse_days(settings.get("days"))
        hours.parse_time(settings.get("start_time"))
        hours.parse_time(settings.get("end_time"))
    except ValueError as exc:
        found.append(str(exc))
    capacity = settings.get("capacity")
    if capacity is not None and (not isinstance(capacity, int) or capacity < 1):
        found.append("capacity is a whole number of at least 1")
    return found


def apply_rules(session: Session, data: Any, changes: list[str], problems: list[str]) -> None:
    """Add and update the bundle's rules; rules only here stay."""
    models = assignable_models()
    teams = {name: pk for pk, name in team_names(session).items()}
    for model, rules in (data or {}).items():
        if model not in models:
            problems.append(f"{SECTION}.{model}: no such record type with an owner")
            continue
        for name, settings in (rules or {}).items():
            where = f"{SECTION}.{model}.{name}"
            settings = dict(settings or {})
            unknown = set(settings) - set(KEYS)
            if unknown:
                problems.append(f"{where}: unknown settings {', '.join(sorted(unknown))}")
                continue
            found = _problems(models[model], settings)
            team_id = None
            if settings.get("team"):
                team_id = teams.get(settings["team"])
                if team_id is None:
                    found.append(f"no team {settings['team']} here")
            usernames = [str(u) for u in settings.get("users") or []]
            users = list(session.scalars(select(User).where(User.username.in_(usernames))))
            missing = set(usernames) - {u.username for u in users}
            if missing:
                found.append(f"no users {', '.join(sorted(missing))} here")
            if team_id is None and not users:
                found.append("a rule needs a team or users")
            if found:
                problems += [f"{where}: {p}" for p in found]
                continue
            _write(session, model, name, settings, team_id, users, where, changes)


def _write(
    session: Session,
    model: str,
    name: str,
    settings: dict[str, Any],
    team_id: int | None,
    users: list[Any],
    where: str,
    changes: list[str],
) -> None:
    rule = session.scalar(
        select(AssignmentRule).where(AssignmentRule.model == model, AssignmentRule.name == name)
    )
    new = rule is None
    if rule is None:
        rule = AssignmentRule(model=model, name=name)
        session.add(rule)
    changed = []
    wanted = {key: settings[key] for key in PLAIN if key in settings}
    if "days" in wanted:
        wanted["days"] = hours.normal_days(wanted["days"])
    wanted["team_id"] = team_id
    for key, value in wanted.items():
        if getattr(rule, key) != value:
            changed.append(key)
            setattr(rule, key, value)
    if sorted(u.id for u in rule.users) != sorted(u.id for u in users):
        changed.append("users")
        rule.users = sorted(users, key=lambda u: u.id)
    if new:
        changes.append(f"{where}: added")
    elif changed:
        changes.append(f"{where}: " + ", ".join(changed))


SECTIONS = [ConfigSection(SECTION, export_rules, apply_rules)]
