"""Keeping each team's materialised path (``/1/4/9/``) in step with its parent."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..db import session
from ..errors import FieldError
from .models import Team


def refresh_paths() -> None:
    """Recompute every team's path; teams are few (hundreds), so one pass is cheap."""
    s = session()
    teams = {t.id: t for t in s.scalars(select(Team))}
    for team in teams.values():
        seen: list[int] = []
        node: Team | None = team
        while node is not None:
            if node.id in seen:
                raise FieldError({"parent": [str(_l("A team cannot be inside itself"))]})
            seen.append(node.id)
            node = teams.get(node.parent_id) if node.parent_id else None
        path = "/" + "/".join(str(i) for i in reversed(seen)) + "/"
        if team.path != path:
            team.path = path
    s.commit()


def subtree_ids(team_id: int) -> list[int]:
    """Ids of a team and every team below it."""
    s = session()
    team = s.get(Team, team_id)
    if team is None:
        return []
    return list(s.scalars(select(Team.id).where(Team.path.startswith(team.path))))
