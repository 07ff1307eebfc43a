"""The ``approval_processes`` section of configuration bundles (``crm config export|import``):
``{name: {model, label_zh, label_en, active, join, conditions, steps}}``, the steps being those
new approvals follow. Importing changed steps adds a version, as the admin screen does."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...lowcode import conditions as cond
from ...lowcode.bundle import ConfigSection
from . import definitions
from . import steps as step_defs
from .models import ApprovalProcess

NAME = "approval_processes"


def export_processes(session: Session) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for process in session.scalars(select(ApprovalProcess).order_by(ApprovalProcess.name)):
        out[process.name] = {
            "model": process.model,
            "label_zh": process.label_zh,
            "label_en": process.label_en,
            "active": process.active,
            "join": process.join,
            "conditions": [str(c) for c in process.parsed()],
            "steps": definitions.current_steps(session, process),
        }
    return out


def apply_processes(session: Session, data: Any, changes: list[str], problems: list[str]) -> None:
    for name, spec in (data or {}).items():
        where = f"{NAME}.{name}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: not an approval process")
            continue
        unknown = set(spec) - {*definitions.PROCESS_FIELDS, "steps"}
        if unknown:
            problems.append(f"{where}: unknown settings {', '.join(sorted(unknown))}")
            continue
        try:
            conditions = cond.parse("\n".join(str(c) for c in spec.get("conditions") or []))
            steps = [step_defs.normalised(dict(s or {})) for s in spec.get("steps") or []]
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        found = definitions.problems(session, str(spec.get("model") or ""), conditions, steps)
        if not spec.get("label_zh"):
            found["label_zh"] = ["label_zh is missing"]
        if spec.get("join", "all") not in ("all", "any"):
            found["join"] = ["join is all or any"]
        if found:
            problems += [f"{where}.{key}: {' '.join(texts)}" for key, texts in found.items()]
            continue
        process = session.scalar(select(ApprovalProcess).where(ApprovalProcess.name == name))
        new = process is None
        if process is None:
            process = ApprovalProcess(name=name)
        attrs = {
            "model": spec["model"],
            "label_zh": spec["label_zh"],
            "label_en": spec.get("label_en"),
            "active": bool(spec.get("active", True)),
            "join": spec.get("join", "all"),
            "conditions": cond.as_data(conditions) or None,
        }
        changed = [k for k, v in attrs.items() if getattr(process, k, None) != v]
        for key in changed:
            setattr(process, key, attrs[key])
        version = definitions.save(session, process, steps)
        if new:
            changes.append(f"{where}: added")
        elif changed or version is not None:
            what = changed + ([f"steps (version {version.number})"] if version else [])
            changes.append(f"{where}: " + ", ".join(what))


SECTION = ConfigSection(NAME, export_processes, apply_processes)
