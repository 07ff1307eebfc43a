"""Suggesting which field each column of a file fills, from its header.

A header matches a field by, in this order: a custom field's label (admins name their fields as
their spreadsheets do), a field's label in any language, its name, a synonym the module declares
(手机 → phone), then the closest of those names when rapidfuzz scores it at least
:data:`FUZZY_CUTOFF`. Each field takes one column at most; the user confirms or changes the
suggestion before anything is written.
"""

from __future__ import annotations

import re

from flask_babel import gettext as _
from rapidfuzz import fuzz, process

from ...errors import FieldError
from .targets import ImportField

FUZZY_CUTOFF = 85
_NOISE = re.compile(r"[\s_\-*＊:：()（）/]+")


def _norm(text: str) -> str:
    return _NOISE.sub("", text).lower()


def suggest(header: list[str], fields: list[ImportField]) -> dict[int, str]:
    """``{column position: field key}`` for the columns a field is found for."""
    taken: set[str] = set()
    out: dict[int, str] = {}
    tiers: list[dict[str, str]] = [{}, {}, {}, {}]
    for f in fields:
        labels = f.names[1:] if f.kind != "link" else f.names[2:]
        if f.kind == "custom":
            for name in f.names:
                tiers[0].setdefault(_norm(name), f.key)
            continue
        for name in labels[:2]:
            tiers[1].setdefault(_norm(name), f.key)
        tiers[2].setdefault(_norm(f.key), f.key)
        if f.link_column:
            tiers[2].setdefault(_norm(f.link_column), f.key)
        for name in labels[2:]:
            tiers[3].setdefault(_norm(name), f.key)
    for tier in tiers:
        for position, title in enumerate(header):
            if position in out or not title:
                continue
            key = tier.get(_norm(title))
            if key and key not in taken:
                out[position] = key
                taken.add(key)
    choices = {name: key for tier in reversed(tiers) for name, key in tier.items()}
    for position, title in enumerate(header):
        if position in out or not _norm(title):
            continue
        best = process.extractOne(_norm(title), list(choices), scorer=fuzz.ratio)
        if best and best[1] >= FUZZY_CUTOFF and choices[best[0]] not in taken:
            out[position] = choices[best[0]]
            taken.add(choices[best[0]])
    return out


def check(
    mapping: dict[int, str], header: list[str], fields: list[ImportField], key: str | None
) -> None:
    """Refuse a mapping that names unknown fields, uses a field twice, leaves out a required
    field, or whose key field is not mapped."""
    by_key = {f.key: f for f in fields}
    errors: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    for position, name in mapping.items():
        if not 0 <= position < len(header):
            errors.setdefault("mapping", []).append(
                _("The file has no column %(n)s.", n=position + 1)
            )
        elif name not in by_key:
            errors.setdefault("mapping", []).append(
                _(
                    "Column %(column)s: there is no field %(field)s.",
                    column=header[position],
                    field=name,
                )
            )
        elif name in seen:
            errors.setdefault("mapping", []).append(
                _(
                    "Columns %(a)s and %(b)s both fill %(field)s.",
                    a=header[seen[name]],
                    b=header[position],
                    field=by_key[name].label,
                )
            )
        else:
            seen[name] = position
    if key:
        field = by_key.get(key)
        if field is None or not field.key_ok:
            errors.setdefault("key_field", []).append(
                _(
                    "%(field)s cannot identify existing records.",
                    field=field.label if field else key,
                )
            )
        elif key not in seen:
            errors.setdefault("key_field", []).append(
                _("Map a column to %(field)s to match existing records by it.", field=field.label)
            )
    if errors:
        raise FieldError(errors)


def missing_required(mapping: dict[int, str], fields: list[ImportField]) -> list[ImportField]:
    """Required fields no column fills (new records would all be refused)."""
    mapped = set(mapping.values())
    return [f for f in fields if f.required and f.key not in mapped]
