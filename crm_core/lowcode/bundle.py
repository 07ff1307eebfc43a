"""Configuration bundles: every customisation as one readable YAML document.

``crm config export`` writes the sections below (and those modules add through
``register_config_sections``); ``crm config diff`` shows what importing a bundle would change;
``crm config import`` applies it, all or nothing, with ``--dry-run`` to only look. Sections are
keyed by names, never by database ids, so a bundle moves between instances and backends:

- ``custom_fields``: ``{model: {key: settings}}``
- ``picklists``: ``{name: {labels, values: [...]}}``
- ``roles``: ``{role: [[permission, view], ...]}``
- ``record_rules``: ``{role: {model: {read, write, pool}}}``
- ``validation_rules``, ``duplicate_rules``: ``{model: {name: rule}}``
- ``layouts``: ``{model: {role or "*": {sections, hidden, list_columns, order_column,
  order_direction}}}`` (``*``: the default layout of every role)
- ``settings``: ``{key: value}`` of the settings an admin changed

An import adds and updates; what the bundle does not name is left alone (a field, value or
role that exists only in the target is reported by ``diff`` as ``only here``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import yaml
from flask import current_app
from flask_appbuilder import Model
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from . import live
from .fields import KINDS, NAME, FieldDefinition, custom_column
from .picklists import Picklist, PicklistValue
from .validation import RULE_FIELDS

FORMAT = 1
#: Columns of a definition that are not configuration.
_FIELD_SKIP = {"id", "model", "name", "created_at", "updated_at", "encryption_pending"}


class BundleError(ValueError):
    """A bundle that cannot be applied; ``problems`` says why, each naming its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ConfigSection:
    """One part of the configuration: how to read it and how to apply it.

    ``export(session)`` returns plain data (dicts, lists, text, numbers, booleans);
    ``apply(session, data, changes, problems)`` makes the database match ``data`` (adding and
    updating, never removing), appending a line per change to ``changes`` and per unusable
    entry to ``problems``; it flushes but never commits.
    """

    name: str
    export: Callable[[Session], Any]
    apply: Callable[[Session, Any, list[str], list[str]], None]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _set(obj: Any, attrs: dict[str, Any], where: str, changes: list[str], new: bool) -> None:
    """Set ``attrs`` on ``obj``, noting each changed value (or the addition) in ``changes``."""
    changed = []
    for key, value in attrs.items():
        old = getattr(obj, key, None)
        if _plain(old) != value:
            changed.append(f"{key}: {_plain(old)!r} → {value!r}")
            setattr(obj, key, value)
    if new:
        changes.append(f"{where}: added")
    elif changed:
        changes.append(f"{where}: " + ", ".join(changed))


# --------------------------------------------------------------------------- custom fields


def _field_columns() -> list[str]:
    return [c.key for c in inspect(FieldDefinition).column_attrs if c.key not in _FIELD_SKIP]


def _field_problems(model: str, name: str, settings: dict[str, Any]) -> list[str]:
    """What keeps a custom field of a bundle from being written at all."""
    if not NAME.match(str(name)):
        return ["not a valid key"]
    if settings.get("kind") not in KINDS:
        return [f"unknown kind {settings.get('kind')!r}"]
    if settings.get("pattern"):
        try:
            re.compile(settings["pattern"])
        except re.error:
            return ["pattern is not a regular expression"]
    return []


# --------------------------------------------------------------------------- picklists


def export_picklists(session: Session) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for picklist in session.scalars(select(Picklist).order_by(Picklist.name)):
        values = session.scalars(
            select(PicklistValue)
            .where(PicklistValue.picklist_id == picklist.id)
            .order_by(PicklistValue.position, PicklistValue.id)
        )
        out[picklist.name] = {
            "label_zh": picklist.label_zh,
            "label_en": picklist.label_en,
            "owner": picklist.owner,
            "values": [
                {
                    "value": v.value,
                    "label_zh": v.label_zh,
                    "label_en": v.label_en,
                    "color": v.color,
                    "position": v.position,
                    "active": v.active,
                }
                for v in values
            ],
        }
    return out


def apply_picklists(session: Session, data: Any, changes: list[str], problems: list[str]) -> None:
    for name, spec in (data or {}).items():
        where = f"picklists.{name}"
        spec = dict(spec or {})
        if not spec.get("label_zh"):
            problems.append(f"{where}: label_zh is missing")
            continue
        picklist = session.scalar(select(Picklist).where(Picklist.name == name))
        new = picklist is None
        if picklist is None:
            picklist = Picklist(name=name)
            session.add(picklist)
        attrs = {k: spec.get(k) for k in ("label_zh", "label_en")}
        attrs["owner"] = spec.get("owner") or "core"
        _set(picklist, attrs, where, changes, new)
        session.flush()
        for item in spec.get("values") or []:
            item = dict(item or {})
            value = str(item.get("value") or "")
            if not value or not item.get("label_zh"):
                problems.append(f"{where}: a value needs value and label_zh")
                continue
            row = session.scalar(
                select(PicklistValue).where(
                    PicklistValue.picklist_id == picklist.id, PicklistValue.value == value
                )
            )
            fresh = row is None
            if row is None:
                row = PicklistValue(picklist_id=picklist.id, value=value)
                session.add(row)
            attrs = {
                "label_zh": item["label_zh"],
                "label_en": item.get("label_en"),
                "color": item.get("color"),
                "position": int(item.get("position") or 100),
                "active": bool(item.get("active", True)),
            }
            _set(row, attrs, f"{where}.{value}", changes, fresh)


# --------------------------------------------------------------------------- roles and rules


def _sm() -> Any:
    return current_app.appbuilder.sm  # type: ignore[attr-defined]


def export_roles(session: Session) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for role in sorted(_sm().get_all_roles(), key=lambda r: r.name):
        out[role.name] = sorted(
            [pv.permission.name, pv.view_menu.name]
            for pv in role.permissions
            if pv.permission and pv.view_menu
        )
    return out


def apply_roles(session: Session, data: Any, changes: list[str], problems: list[str]) -> None:
    """Each named role gets exactly the bundle's permissions on the screens and APIs the
    bundle knows; its permissions on others (a module installed only here) stay."""
    sm = _sm()
    known = {
        str(pair[1])
        for permissions in (data or {}).values()
        for pair in permissions or []
        if isinstance(pair, list | tuple) and len(pair) == 2
    }
    for name, permissions in (data or {}).items():
        where = f"roles.{name}"
        role = sm.find_role(name)
        if role is None:
            role = sm.add_role(name)
            changes.append(f"{where}: added")
        wanted = []
        for pair in permissions or []:
            permission, view = (list(pair) + [None, None])[:2]
            pv = sm.find_permission_view_menu(permission, view)
            if pv is None:
                problems.append(f"{where}: no permission {permission} on {view} here")
                continue
            wanted.append(pv)
        wanted_ids = {pv.id for pv in wanted}
        kept = [pv for pv in role.permissions if pv.view_menu.name not in known]
        removed = [
            pv for pv in role.permissions if pv.view_menu.name in known and pv.id not in wanted_ids
        ]
        have = {pv.id for pv in role.permissions}
        added = [pv for pv in wanted if pv.id not in have]
        if added or removed:
            role.permissions = [*kept, *wanted]
            changes.append(f"{where}: {len(added)} permissions added, {len(removed)} removed")


def export_rules(session: Session) -> dict[str, Any]:
    from ..security.models import RecordRule

    out: dict[str, dict[str, Any]] = {}
    roles = {r.id: r.name for r in _sm().get_all_roles()}
    for rule in session.scalars(select(RecordRule).order_by(RecordRule.model)):
        role = roles.get(rule.role_id)
        if role is None:
            continue
        out.setdefault(role, {})[rule.model] = {
            "read": rule.read_scope,
            "write": rule.write_scope,
            "pool": rule.pool,
        }
    return dict(sorted(out.items()))


def apply_rules(session: Session, data: Any, changes: list[str], problems: list[str]) -> None:
    from ..security.models import SCOPES, RecordRule

    sm = _sm()
    for role_name, models in (data or {}).items():
        role = sm.find_role(role_name)
        if role is None:
            problems.append(f"record_rules.{role_name}: no such role (add it under roles)")
            continue
        for model, rule in (models or {}).items():
            where = f"record_rules.{role_name}.{model}"
            rule = dict(rule or {})
            if rule.get("read") not in SCOPES or rule.get("write") not in SCOPES:
                problems.append(f"{where}: read and write must be one of {', '.join(SCOPES)}")
                continue
            row = session.scalar(
                select(RecordRule).where(RecordRule.role_id == role.id, RecordRule.model == model)
            )
            new = row is None
            if row is None:
                row = RecordRule(role_id=role.id, model=model)
                session.add(row)
            attrs = {
                "read_scope": rule["read"],
                "write_scope": rule["write"],
                "pool": bool(rule.get("pool", False)),
            }
            _set(row, attrs, where, changes, new)


# --------------------------------------------------------------------------- layouts

_LAYOUT_KEYS = ("sections", "hidden", "list_columns", "order_column", "order_direction")


def export_layouts(session: Session) -> dict[str, Any]:
    from .layouts import Layout

    roles = {r.id: r.name for r in _sm().get_all_roles()}
    out: dict[str, dict[str, Any]] = {}
    rows = session.scalars(select(Layout).order_by(Layout.model, Layout.id))
    # Per record type the default layout first, then the roles' by name.
    for row in sorted(
        rows, key=lambda r: (r.model, r.role_id is not None, roles.get(r.role_id, ""))
    ):
        role = "*" if row.role_id is None else roles.get(row.role_id)
        if role is None:
            continue
        out.setdefault(row.model, {})[role] = {k: _plain(getattr(row, k)) for k in _LAYOUT_KEYS}
    return out


def _layout_attrs(spec: dict[str, Any]) -> dict[str, Any]:
    """A bundle's layout in its stored form."""
    from .layouts import sections_of, stored_sections

    def names(value: Any) -> list[str] | None:
        return [str(v) for v in value] if isinstance(value, list) and value else None

    order_column = str(spec.get("order_column") or "") or None
    return {
        "sections": stored_sections(sections_of(spec.get("sections"))) or None,
        "hidden": names(spec.get("hidden")),
        "list_columns": names(spec.get("list_columns")),
        "order_column": order_column,
        "order_direction": (spec.get("order_direction") or "asc") if order_column else None,
    }


def apply_layouts(session: Session, data: Any, changes: list[str], problems: list[str]) -> None:
    """Layouts by record type and role name; fields are checked against the record type's
    screen, with the custom fields as this bundle leaves them."""
    from .fields import definitions
    from .layout_screen import layout_screens, offer
    from .layout_screen import problems as layout_problems
    from .layouts import Layout, sections_of

    screens = layout_screens()
    sm = _sm()
    for model, roles in (data or {}).items():
        screen = screens.get(model)
        if screen is None:
            problems.append(f"layouts.{model}: no such record type has a screen here")
            continue
        fields = offer(screen, definitions(session, model))
        for role_name, spec in (roles or {}).items():
            where = f"layouts.{model}.{role_name}"
            if not isinstance(spec, dict):
                problems.append(f"{where}: not a layout")
                continue
            unknown = set(spec) - set(_LAYOUT_KEYS)
            if unknown:
                problems.append(f"{where}: unknown settings {', '.join(sorted(unknown))}")
                continue
            role = None if role_name == "*" else sm.find_role(role_name)
            if role_name != "*" and role is None:
                problems.append(f"{where}: no such role (add it under roles)")
                continue
            attrs = _layout_attrs(spec)
            found = layout_problems(
                fields,
                sections_of(attrs["sections"]),
                attrs["list_columns"] or [],
                attrs["order_column"],
                attrs["order_direction"],
                attrs["hidden"] or [],
            )
            if found:
                problems += [f"{where}: {p}" for p in found]
                continue
            role_id = None if role is None else role.id
            row = session.scalar(
                select(Layout).where(
                    Layout.model == model,
                    Layout.role_id.is_(None) if role_id is None else Layout.role_id == role_id,
                )
            )
            new = row is None
            if row is None:
                row = Layout(model=model, role_id=role_id)
                session.add(row)
            _set(row, attrs, where, changes, new)


# --------------------------------------------------------------------------- settings


def export_settings(session: Session) -> dict[str, Any]:
    from ..settings.models import Setting

    declared = current_app.extensions["crm"].settings
    rows = session.scalars(select(Setting).where(Setting.key.in_(list(declared))))
    return {row.key: row.value for row in sorted(rows, key=lambda r: r.key)}


def apply_settings(session: Session, data: Any, changes: list[str], problems: list[str]) -> None:
    from ..settings.models import Setting

    registry = current_app.extensions["crm"]
    for key, value in (data or {}).items():
        if key not in registry.settings:
            problems.append(f"settings.{key}: no module declares this setting here")
            continue
        row = session.get(Setting, key)
        new = row is None
        if row is None:
            row = Setting(key=key, plugin=registry.setting_owner.get(key, "core"))
            session.add(row)
        _set(row, {"value": value}, f"settings.{key}", changes, new)


def per_model_section(
    name: str,
    row_class: Callable[[], type],
    keys: Callable[[], tuple[str, ...]],
    problems_of: Callable[[type, Any], list[str]] | None = None,
    *,
    takes: Callable[[type], Any] = lambda cls: True,
    missing: str = "no such record type",
    refuse: Callable[[str, str, dict[str, Any]], list[str]] | None = None,
) -> ConfigSection:
    """A section of rows named per model (``{model: {name: {key: value}}}``), such as custom
    fields and validation and duplicate rules. Only models that ``takes`` accepts may be
    named (else ``missing``); ``refuse(model, name, settings)`` names what keeps a row from
    being written at all, ``problems_of(model_class, row)`` what is wrong with a written one."""

    def export_rows(session: Session) -> dict[str, Any]:
        cls: Any = row_class()
        out: dict[str, dict[str, Any]] = {}
        for row in session.scalars(select(cls).order_by(cls.model, cls.position, cls.id)):
            out.setdefault(row.model, {})[row.name] = {k: _plain(getattr(row, k)) for k in keys()}
        return out

    def apply_rows(session: Session, data: Any, changes: list[str], problems: list[str]) -> None:
        cls: Any = row_class()
        models = {m.class_.__name__: m.class_ for m in Model.registry.mappers if takes(m.class_)}
        for model, rows in (data or {}).items():
            if model not in models:
                problems.append(f"{name}.{model}: {missing}")
                continue
            for row_name, settings in (rows or {}).items():
                where = f"{name}.{model}.{row_name}"
                settings = dict(settings or {})
                unknown = set(settings) - set(keys())
                if unknown:
                    problems.append(f"{where}: unknown settings {', '.join(sorted(unknown))}")
                    continue
                refused = refuse(model, row_name, settings) if refuse is not None else []
                if refused:
                    problems += [f"{where}: {p}" for p in refused]
                    continue
                query = select(cls).where(cls.model == model, cls.name == row_name)
                row = session.scalar(query)
                new = row is None
                if row is None:
                    row = cls(model=model, name=row_name)
                    session.add(row)
                _set(row, settings, where, changes, new)
                if problems_of is not None:
                    problems += [f"{where}: {p}" for p in problems_of(models[model], row)]

    return ConfigSection(name, export_rows, apply_rows)


def _validation_rule() -> type:
    from .validation import ValidationRule

    return ValidationRule


def _duplicate_rule() -> type:
    from .duplicates import DuplicateRule

    return DuplicateRule


def _validation_problems(model: type, row: Any) -> list[str]:
    from .validation import rule_problems

    if not row.target or not row.check or not row.message_zh:
        return ["target, check and message_zh are required"]
    return rule_problems(model, row)


def _duplicate_problems(model: type, row: Any) -> list[str]:
    from . import conditions
    from .duplicates import ACTIONS, METHODS

    found = []
    if row.method not in METHODS or row.action not in ACTIONS:
        found.append(f"method is one of {', '.join(METHODS)}, action one of {', '.join(ACTIONS)}")
    if conditions.field_kind(model, row.field or "") is None:
        found.append(f"there is no field {row.field}")
    return found


CORE_SECTIONS = (
    per_model_section(
        "custom_fields",
        lambda: FieldDefinition,
        lambda: tuple(_field_columns()),
        takes=custom_column,
        missing="no such record type takes custom fields",
        refuse=_field_problems,
    ),
    ConfigSection("picklists", export_picklists, apply_picklists),
    ConfigSection("roles", export_roles, apply_roles),
    ConfigSection("record_rules", export_rules, apply_rules),
    per_model_section(
        "validation_rules",
        _validation_rule,
        lambda: RULE_FIELDS,
        _validation_problems,
    ),
    per_model_section(
        "duplicate_rules",
        _duplicate_rule,
        lambda: ("field", "method", "threshold", "action", "position", "active"),
        _duplicate_problems,
    ),
    ConfigSection("layouts", export_layouts, apply_layouts),
    ConfigSection("settings", export_settings, apply_settings),
)


# --------------------------------------------------------------------------- the bundle


def sections() -> list[ConfigSection]:
    """The core's sections, then those of every loaded module."""
    registry = current_app.extensions["crm"]
    extra = [spec for _owner, spec in registry.collect_specs("register_config_sections")]
    return [*CORE_SECTIONS, *extra]


def export(session: Session) -> dict[str, Any]:
    """The whole configuration as plain data."""
    out: dict[str, Any] = {"crm_config": FORMAT}
    for section in sections():
        out[section.name] = section.export(session)
    return out


def dump(data: dict[str, Any]) -> str:
    """``data`` as YAML a person can read and review (Chinese as written, keys in order)."""
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def load(text: str) -> dict[str, Any]:
    """A bundle from YAML text; :class:`BundleError` when it is not one."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BundleError([f"not YAML: {exc}"]) from None
    if not isinstance(data, dict) or data.get("crm_config") != FORMAT:
        raise BundleError([f"not a configuration bundle (crm_config: {FORMAT} is missing)"])
    return data


def apply(session: Session, data: dict[str, Any], *, dry_run: bool = False) -> list[str]:
    """Apply a bundle, all or nothing: the changes made (or, with ``dry_run``, that would be
    made). :class:`BundleError` lists every unusable entry, and nothing is written then."""
    changes: list[str] = []
    problems: list[str] = []
    known = {s.name for s in sections()} | {"crm_config"}
    problems += [f"{name}: unknown section" for name in data if name not in known]
    try:
        with live.as_in(session) as reread:  # later sections see the fields added before
            for section in sections():
                if section.name in data:
                    section.apply(session, data[section.name], changes, problems)
                    session.flush()
                    reread()
        if problems:
            raise BundleError(problems)
    except Exception:
        session.rollback()
        raise
    if dry_run:
        session.rollback()
    else:
        session.commit()
    return changes


def only_here(session: Session, data: dict[str, Any]) -> list[str]:
    """What this instance has and the bundle does not name (an import leaves it alone)."""
    current = export(session)
    out = []
    for name, value in current.items():
        theirs = data.get(name)
        if not isinstance(value, dict) or not isinstance(theirs, dict | type(None)):
            continue
        for key in value:
            if theirs is None or key not in theirs:
                out.append(f"{name}.{key}: only here")
            elif isinstance(value[key], dict) and isinstance(theirs[key], dict):
                out += [
                    f"{name}.{key}.{sub}: only here" for sub in value[key] if sub not in theirs[key]
                ]
    return out
