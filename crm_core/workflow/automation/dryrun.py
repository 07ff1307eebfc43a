"""The dry run: what a rule would do to chosen or sampled records, writing nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ...db import model_class, utcnow
from ...db import session as current_session
from .actions import Context, actions, no_such_action
from .engine import error_text
from .rulecache import RuleDef

SAMPLE = 10


@dataclass(frozen=True)
class Prediction:
    """For one record: whether the conditions hold, and what each action would do."""

    record: Any
    matches: bool
    actions: tuple[str, ...]


def sample(model: str, ids: list[int] | None = None, limit: int = SAMPLE) -> list[Any]:
    """The records of ``model`` with ``ids`` that the user may read, else its newest ones."""
    cls = model_class(model)
    if cls is None:
        return []
    pk = cls.id  # type: ignore[attr-defined]
    query: Any = select(cls)
    query = query.where(pk.in_(ids)) if ids else query.order_by(pk.desc())
    return list(current_session().scalars(query.limit(limit)))  # the user's record rules apply


def dry_run(rule: RuleDef, records: list[Any]) -> list[Prediction]:
    """What ``rule`` would do to each of ``records`` now. Nothing is written: every action's
    ``predict`` is asked, and the session is rolled back after."""
    session = current_session()
    offered = actions()
    out = []
    now = utcnow()
    try:
        with session.no_autoflush:
            for record in records:
                if not rule.holds(record):
                    out.append(Prediction(record, False, ()))
                    continue
                ctx = Context(session, rule, record, None, now)
                lines = []
                for number, step in enumerate(rule.actions, start=1):
                    spec = offered.get(str(step.get("type")))
                    if spec is None:
                        lines.append(no_such_action(number, step.get("type")))
                        continue
                    try:
                        said = spec.predict(ctx, dict(step.get("params") or {}))
                    except Exception as exc:  # noqa: BLE001 - shown as the action's problem
                        said = error_text(exc)
                    lines.append(str(_l("%(action)s: %(result)s", action=spec.label, result=said)))
                out.append(Prediction(record, True, tuple(lines)))
    finally:
        session.rollback()
    return out
