"""The ``automation_rules`` section of configuration bundles (``crm config export|import``):
``{name: definition}`` as :mod:`.definitions` describes it. Importing a changed definition
adds a version, as the admin screen does."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...lowcode.bundle import ConfigSection
from . import definitions
from .actions import actions
from .models import AutomationRule

NAME = "automation_rules"


def _secret_keys() -> dict[str, set[str]]:
    return {name: {p.key for p in spec.params if p.secret} for name, spec in actions().items()}


def export_rules(session: Session) -> dict[str, Any]:
    """Every rule's definition, without the secret settings of its actions."""
    secret = _secret_keys()
    out = {}
    for rule in session.scalars(select(AutomationRule).order_by(AutomationRule.name)):
        data = definitions.definition_of(rule)
        for step in data["actions"]:
            hidden = secret.get(step["type"], set())
            step["params"] = {k: v for k, v in step["params"].items() if k not in hidden}
        out[rule.name] = data
    return out


def _keep_secrets(rule: AutomationRule, data: dict[str, Any]) -> None:
    """Give the imported actions the secret settings the rule's same actions have."""
    secret = _secret_keys()
    before = list(rule.actions or [])
    for index, step in enumerate(data["actions"]):
        if index >= len(before) or before[index].get("type") != step["type"]:
            continue
        for key in secret.get(step["type"], set()):
            old = (before[index].get("params") or {}).get(key)
            if old and key not in step["params"]:
                step["params"][key] = old


def apply_rules(session: Session, data: Any, changes: list[str], problems: list[str]) -> None:
    for name, spec in (data or {}).items():
        where = f"{NAME}.{name}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: not an automation rule")
            continue
        unknown = set(spec) - set(definitions.FIELDS)
        if unknown:
            problems.append(f"{where}: unknown settings {', '.join(sorted(unknown))}")
            continue
        try:
            normal = definitions.normalised(spec)
        except (TypeError, AttributeError, ValueError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        found = definitions.problems(normal)
        if found:
            problems += [f"{where}.{key}: {' '.join(texts)}" for key, texts in found.items()]
            continue
        rule = session.scalar(select(AutomationRule).where(AutomationRule.name == name))
        new = rule is None
        if rule is None:
            rule = AutomationRule(name=name)
        _keep_secrets(rule, normal)
        if definitions.save(session, rule, normal, saved_by="config import"):
            changes.append(f"{where}: {'added' if new else f'version {rule.version}'}")


SECTION = ConfigSection(NAME, export_rules, apply_rules)
