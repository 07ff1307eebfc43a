"""What an action sees and how its settings are written.

An action's settings are ``key = value`` lines in the rule editor (stored as a dict). Texts
may use the record's values as ``{{ record.name }}``, ``{{ record.city }}``, a custom field
as ``{{ record.custom__grade }}``, a linked record by its relation (``{{ record.owner }}``),
and ``{{ rule }}`` and ``{{ event.type }}``: Jinja2 in a sandbox, over plain values only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from ...lowcode.fields import custom_column
from ...lowcode.live import PREFIX
from ...specs import ActionSpec, Event

_templates = SandboxedEnvironment(autoescape=False)


@dataclass
class Context:
    """One rule's run on one record: the session to write in (the rule's transaction), the
    rule, the record, the event that triggered it (``None`` for timed rules), the time."""

    session: Session
    rule: Any
    record: Any
    event: Event | None
    now: datetime
    #: What earlier actions of the run left for later ones (a created task).
    made: dict[str, Any] = field(default_factory=dict)

    def render(self, text: str | None) -> str:
        """``text`` with its ``{{ … }}`` filled from the record; a broken template raises
        ``ValueError`` naming the problem."""
        if not text or "{" not in text:
            return text or ""
        try:
            return _templates.from_string(text).render(
                record=record_values(self.record),
                rule=str(self.rule),
                event={"type": self.event.type, "id": self.event.id} if self.event else {},
            )
        except TemplateError as exc:
            raise ValueError(
                str(_l("The text %(text)s cannot be filled: %(error)s", text=text, error=exc))
            ) from None


def record_values(record: Any) -> dict[str, Any]:
    """The record's column values, custom fields (``custom__name``) and many-to-one links
    (as their names), as plain values for texts and webhooks."""
    mapper = inspect(type(record))
    out: dict[str, Any] = {}
    for attr in mapper.column_attrs:
        out[attr.key] = _plain(getattr(record, attr.key, None))
    column = custom_column(type(record))
    if column:
        out.pop(column, None)
        for name, value in (getattr(record, column, None) or {}).items():
            out[f"{PREFIX}{name}"] = _plain(value)
    for rel in mapper.relationships:
        if rel.direction.name == "MANYTOONE":
            linked = getattr(record, rel.key, None)
            out[rel.key] = "" if linked is None else str(linked)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)


def parse_params(text: str, bad: list[str] | None = None) -> dict[str, str]:
    """``key = value`` lines as a dict. A line without ``=`` raises ``ValueError`` naming it,
    or, with a ``bad`` list, is named there and the other lines are kept."""
    out: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            problem = str(_l("Line %(n)s is not 'setting = value'.", n=number))
            if bad is None:
                raise ValueError(problem)
            bad.append(problem)
            continue
        out[key.strip()] = value.strip()
    return out


def params_text(params: dict[str, Any] | None) -> str:
    return "\n".join(f"{k} = {v}" for k, v in (params or {}).items())


# --------------------------------------------------------------------------- registry


def actions() -> dict[str, ActionSpec]:
    """The actions offered now: the core's and those of enabled plugins, by name."""
    registry = current_app.extensions["crm"]
    found = current_app.extensions.get("crm_automation_actions", {})
    return {name: spec for name, (owner, spec) in found.items() if registry.is_enabled(owner)}


def collect(app: Any) -> None:
    """Gather every module's actions once the app is built (first name wins)."""
    registry = app.extensions["crm"]
    found: dict[str, tuple[str, ActionSpec]] = {}
    for owner, spec in registry.collect_specs("register_automation_actions"):
        found.setdefault(spec.name, (owner, spec))
    app.extensions["crm_automation_actions"] = found


def no_such_action(number: int, name: Any) -> str:
    """What is said of action ``number`` naming an action no enabled module offers."""
    return str(_l("Action %(n)s: there is no action %(name)s.", n=number, name=name))


def problems(model: type, steps: Iterable[dict[str, Any]]) -> list[str]:
    """What is wrong with a rule's actions on ``model``, each naming the action by number."""
    offered = actions()
    out: list[str] = []
    count = 0
    for number, step in enumerate(steps, start=1):
        count += 1
        spec = offered.get(str(step.get("type") or ""))
        params = step.get("params") or {}
        if spec is None:
            out.append(no_such_action(number, step.get("type")))
            continue
        if spec.models and model.__name__ not in spec.models:
            out.append(
                str(
                    _l(
                        "Action %(n)s: %(action)s is not for this record type.",
                        n=number,
                        action=spec.label,
                    )
                )
            )
            continue
        known = {p.key for p in spec.params}
        for key in sorted(set(params) - known):
            out.append(str(_l("Action %(n)s: unknown setting %(key)s.", n=number, key=key)))
        for param in spec.params:
            if param.required and not str(params.get(param.key) or "").strip():
                out.append(str(_l("Action %(n)s: %(key)s is required.", n=number, key=param.key)))
        if spec.check is not None:
            out += [
                str(_l("Action %(n)s: %(problem)s", n=number, problem=p))
                for p in spec.check(model, params)
            ]
    if count == 0:
        out.append(str(_l("A rule needs at least one action.")))
    return out


def record_url(record: Any) -> str | None:
    """The record's page in the CRM (the list screen of its model that shows it), if any."""
    appbuilder = current_app.appbuilder  # type: ignore[attr-defined]
    for view in appbuilder.baseviews:
        datamodel = getattr(view, "datamodel", None)
        if getattr(datamodel, "obj", None) is type(record) and hasattr(view, "show"):
            return f"{view.route_base}/show/{record.id}"
    return None
