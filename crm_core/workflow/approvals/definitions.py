"""Saving approval process definitions, from the admin screen and from configuration bundles
alike: checked the same way, and a change of steps always makes a new version."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from ...db import model_class
from ...lowcode import conditions as cond
from ...lowcode.validation import rule_models
from . import steps as step_defs
from .engine import latest_version
from .models import ApprovalProcess, ApprovalProcessVersion

#: Settings of a process besides its name and steps (its form, and its entry in a bundle).
PROCESS_FIELDS = ("model", "label_zh", "label_en", "active", "join", "conditions")


def process_models() -> list[tuple[str, str]]:
    """Record types a process may approve (those with a label), by label."""
    return rule_models()


def problems(
    session: Session, model: str, conditions: list[cond.Condition], steps: list[dict[str, Any]]
) -> dict[str, list[str]]:
    """What keeps a definition from being saved, by field (``model``, ``conditions``,
    ``steps``), in the user's language."""
    out: dict[str, list[str]] = {}
    cls = model_class(model)
    if cls is None or model not in dict(process_models()):
        out["model"] = [str(_l("Choose a record type."))]
    elif found := cond.problems(cls, conditions):
        out["conditions"] = found
    if found := step_defs.problems(session, steps):
        out["steps"] = found
    return out


def current_steps(session: Session, process: ApprovalProcess) -> list[dict[str, Any]]:
    """The steps new approvals of ``process`` follow."""
    version = latest_version(session, process) if process.id is not None else None
    return list(version.steps) if version is not None else []


def save(
    session: Session, process: ApprovalProcess, steps: list[dict[str, Any]]
) -> ApprovalProcessVersion | None:
    """Add ``process`` (if new) and, when ``steps`` differ from its current ones, a new
    version with them: approvals already started keep theirs. The new version, else ``None``.
    Flushes, never commits."""
    if process.id is None:
        session.add(process)
        session.flush()
    latest = latest_version(session, process)
    if latest is not None and list(latest.steps) == steps:
        return None
    version = ApprovalProcessVersion(
        process_id=process.id, number=(latest.number + 1) if latest else 1, steps=steps
    )
    session.add(version)
    session.flush()
    return version
