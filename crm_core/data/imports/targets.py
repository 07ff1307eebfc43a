"""What a model offers an import: its fields, how each cell becomes a value, what it links to.

The fields of an :class:`~crm_core.specs.ImportSpec`'s model are its columns (less the
bookkeeping ones and the spec's ``exclude``), its many-to-one links (an owner by user name, a
customer by code or name) in place of their id columns, and its active custom fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, String, Text, inspect

from ...lowcode import live, picklists
from ...lowcode.fields import FieldDefinition, choice_pairs, custom_column
from ...specs import ImportSpec
from . import convert

#: Columns no import writes: the record's identity and bookkeeping.
BOOKKEEPING = frozenset({"id", "created_at", "updated_at", "version", "active"})
LANGUAGES = ("zh_CN", "en")


@dataclass
class ImportField:
    """One field a column of the file can fill."""

    key: str
    label: str
    names: tuple[str, ...]
    kind: str  # column, link, custom
    required: bool = False
    column: Any = None
    #: For links: the id column set, the linked model and how a cell finds its record.
    link_column: str | None = None
    target: Any = None
    picklist: str | None = None
    definition: FieldDefinition | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    #: Only for keys: the field can identify existing records.
    key_ok: bool = False


def specs() -> dict[str, ImportSpec]:
    """Every importable model of the loaded modules, by name."""
    registry = current_app.extensions["crm"]
    found: dict[str, ImportSpec] = {}
    for owner, spec in registry.collect_specs("register_importers"):
        if registry.is_enabled(owner):
            found[spec.name] = spec
    return found


def _translations(label: Any) -> tuple[str, ...]:
    names = []
    for locale in LANGUAGES:
        with force_locale(locale):
            names.append(str(label))
    return tuple(names)


def _required(column: Any) -> bool:
    return (
        not column.nullable
        and column.default is None
        and column.server_default is None
        and not column.primary_key
    )


def fields_of(spec: ImportSpec) -> list[ImportField]:
    """The fields of ``spec``'s model in the order of its columns, custom fields last."""
    mapper: Any = inspect(spec.model)
    bound = picklists.bound_columns(spec.model)
    custom = custom_column(spec.model)
    links = {
        next(iter(rel.local_columns)).key: rel
        for rel in mapper.relationships
        if rel.direction.name == "MANYTOONE" and len(rel.local_columns) == 1
    }
    out: list[ImportField] = []
    for column in mapper.columns:
        key = column.key
        if key in BOOKKEEPING or key in spec.exclude or key == custom:
            continue
        if key in links:
            rel = links[key]
            label = spec.labels.get(rel.key) or spec.labels.get(key) or rel.key
            out.append(
                ImportField(
                    key=rel.key,
                    label=str(label),
                    names=(rel.key, key, *_translations(label), *spec.synonyms.get(rel.key, ())),
                    kind="link",
                    required=_required(column),
                    column=column,
                    link_column=key,
                    target=rel.mapper.class_,
                )
            )
            continue
        label = spec.labels.get(key) or key
        out.append(
            ImportField(
                key=key,
                label=str(label),
                names=(key, *_translations(label), *spec.synonyms.get(key, ())),
                kind="column",
                required=_required(column) and key not in spec.generated,
                column=column,
                picklist=bound.get(key),
                aliases=spec.aliases.get(key, {}),
                key_ok=key in spec.keys,
            )
        )
    for defn in live.current(spec.model):
        names = (defn.name, defn.label_zh, *([defn.label_en] if defn.label_en else []))
        out.append(
            ImportField(
                key=live.column_name(defn.name),
                label=str(live.Label(defn)),
                names=tuple(n for n in names if n),
                kind="custom",
                required=defn.required,
                definition=defn,
                key_ok=defn.unique and not defn.encrypted and not defn.encryption_pending,
            )
        )
    return out


def convert_cell(f: ImportField, text: str) -> Any:
    """The value of a non-empty cell for a column field; ``ValueError`` with the message."""
    if f.aliases:
        text = f.aliases.get(text.strip(), f.aliases.get(text.strip().lower(), text))
    column_type = f.column.type
    if isinstance(column_type, Boolean):
        return convert.to_bool(text)
    if isinstance(column_type, DateTime):
        return convert.to_datetime(text)
    if isinstance(column_type, Date):
        return convert.to_date(text)
    if isinstance(column_type, Integer):
        return convert.to_int(text)
    if isinstance(column_type, Numeric):
        value = convert.to_decimal(text, column_type.scale)
        if column_type.precision and column_type.scale is not None:
            digits = column_type.precision - column_type.scale
            if abs(value) >= 10**digits:
                raise ValueError(_("Number out of range"))
        return value
    if isinstance(column_type, String | Text):
        return convert.to_text(text, getattr(column_type, "length", None))
    return text.strip()


def custom_cell(defn: FieldDefinition, text: str) -> Any:
    """A cell of a custom field in the form its checks take (choices by value or label)."""
    kind = defn.kind
    if kind in ("choice", "multi_choice"):
        by_label: dict[str, str] = {}
        for value, label in choice_pairs(defn):
            by_label.setdefault(value.strip().lower(), value)
            by_label.setdefault(label.strip().lower(), value)
        parts = convert.split_list(text) if kind == "multi_choice" else [text.strip()]
        values = [by_label.get(p.lower(), p) for p in parts]
        return values if kind == "multi_choice" else values[0]
    if kind == "bool":
        return convert.to_bool(text)
    if kind == "date":
        return convert.to_date(text).isoformat()
    if kind == "datetime":
        return convert.to_datetime(text).isoformat()
    return text.strip()
