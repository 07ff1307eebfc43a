"""The steps of an approval process: what each kind of step means, checking a definition, and
finding a step's approvers for one record.

A step is ``{"kind", "targets", "timeout_hours", "escalate_to", "name"}``:

- ``role``: any one member of the role named in ``targets`` approves;
- ``manager``: the record owner's manager approves (see :func:`managers_of`);
- ``user``: the one user named in ``targets`` (by login name) approves;
- ``any_of``: any one of the users named in ``targets`` approves;
- ``all_of``: every user named in ``targets`` approves.

``timeout_hours`` (optional): half-way the approvers are reminded, at the end the step is
escalated to the user ``escalate_to`` names, whose decision then counts for the whole step.
"""

from __future__ import annotations

from typing import Any

from flask_appbuilder.security.sqla.models import Role, User, assoc_user_role
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...errors import FieldError
from ...org.models import Team, UserProfile
from ...security.names import role_named

KINDS = {
    "role": _l("Any member of a role"),
    "manager": _l("The owner's manager"),
    "user": _l("A named user"),
    "any_of": _l("Any one of several users"),
    "all_of": _l("All of several users"),
}
#: At most this many approvers are asked in one step (a role with more members: the first).
MAX_APPROVERS = 50
#: How far up the department tree the owner's manager is looked for.
MAX_TEAM_DEPTH = 20


def normalised(raw: dict[str, Any]) -> dict[str, Any]:
    """A step as stored: targets a list of names, the timeout a whole number or ``None``."""
    targets = raw.get("targets") or []
    if isinstance(targets, str):
        targets = targets.replace("，", ",").split(",")
    targets = [str(t).strip() for t in targets if str(t).strip()]
    kind = str(raw.get("kind") or "").strip()
    if kind == "role":  # typed by its label (销售经理) or by its name
        targets = [role_named(t) for t in targets]
    hours = raw.get("timeout_hours")
    return {
        "name": str(raw.get("name") or "").strip(),
        "kind": kind,
        "targets": targets,
        "timeout_hours": int(hours) if hours not in (None, "") else None,
        "escalate_to": str(raw.get("escalate_to") or "").strip() or None,
    }


def _users_named(session: Session, names: list[str]) -> dict[str, User]:
    if not names:
        return {}
    rows = session.scalars(select(User).where(User.username.in_(names)))
    return {u.username: u for u in rows}


def problems(session: Session, steps: list[dict[str, Any]]) -> list[str]:
    """What is wrong with ``steps``, each naming its step (from 1), in the user's language."""
    if not steps:
        return [str(_l("An approval process needs at least one step."))]
    out = []
    for number, step in enumerate(steps, start=1):

        def say(text: Any, n: int = number) -> None:
            out.append(str(_l("Step %(n)s: %(problem)s", n=n, problem=text)))

        kind, targets = step["kind"], step["targets"]
        if kind not in KINDS:
            say(_l("choose who approves."))
            continue
        if kind == "role":
            if len(targets) != 1:
                say(_l("name one role."))
            elif session.scalar(select(Role.id).where(Role.name == targets[0])) is None:
                say(_l("there is no role %(name)s.", name=targets[0]))
        elif kind in ("user", "any_of", "all_of"):
            if kind == "user" and len(targets) != 1:
                say(_l("name one user."))
            elif not targets:
                say(_l("name the users, separated by commas."))
            else:
                known = _users_named(session, targets)
                for name in targets:
                    if name not in known:
                        say(_l("there is no user %(name)s.", name=name))
        elif targets:
            say(_l("the owner's manager takes no names."))
        hours = step["timeout_hours"]
        if hours is not None and hours <= 0:
            say(_l("the timeout must be a positive number of hours."))
        if step["escalate_to"]:
            if hours is None:
                say(_l("escalation needs a timeout."))
            elif not _users_named(session, [step["escalate_to"]]):
                say(_l("there is no user %(name)s.", name=step["escalate_to"]))
    return out


def role_members(session: Session, role: str) -> list[User]:
    query = (
        select(User)
        .join(assoc_user_role, assoc_user_role.c.user_id == User.id)
        .join(Role, Role.id == assoc_user_role.c.role_id)
        .where(Role.name == role, User.active.is_(True))
        .order_by(User.id)
        .limit(MAX_APPROVERS)
    )
    return list(session.scalars(query))


def managers_of(session: Session, owner_id: int | None) -> list[User]:
    """The owner's manager: the manager of the owner's department, or of the nearest
    department above it when the owner manages their own (or it has none); else the manager
    set on the owner's profile."""
    if owner_id is None:
        return []
    profile = session.scalar(select(UserProfile).where(UserProfile.user_id == owner_id))
    if profile is None:
        return []
    team_id = profile.team_id
    for _depth in range(MAX_TEAM_DEPTH):
        if team_id is None:
            break
        team = session.get(Team, team_id)
        if team is None:
            break
        if team.manager_id is not None and team.manager_id != owner_id:
            manager = session.get(User, team.manager_id)
            if manager is not None and manager.active:
                return [manager]
        team_id = team.parent_id
    if profile.manager_id is not None and profile.manager_id != owner_id:
        manager = session.get(User, profile.manager_id)
        if manager is not None and manager.active:
            return [manager]
    return []


def approvers(session: Session, step: dict[str, Any], owner_id: int | None) -> list[User]:
    """Who is asked to approve ``step`` for a record owned by ``owner_id``."""
    kind, targets = step["kind"], step["targets"]
    if kind == "role":
        return role_members(session, targets[0]) if targets else []
    if kind == "manager":
        return managers_of(session, owner_id)
    known = _users_named(session, targets[:MAX_APPROVERS])
    return [known[name] for name in targets if name in known and known[name].active]


def needs_everyone(step: dict[str, Any]) -> bool:
    """Whether every approver of the step must approve (else any one is enough)."""
    return bool(step["kind"] == "all_of")


def no_approver(number: int) -> FieldError:
    return FieldError({"step": [str(_l("Step %(n)s of this approval has no approver.", n=number))]})
