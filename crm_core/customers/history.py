"""A record's change history as its page shows it: one row per changed field, in the words and
the masking of the screens.

An audit entry keeps changes as stored (``{"phone": [old, new], "custom": [{…}, {…}]}``).
Shown, each custom field is a row of its own under its label; encrypted custom values are read
in plain, sensitive fields (columns and custom fields) are masked for users who read them
masked, and picklist columns and choice fields show their labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..db import session
from ..lowcode import forms as custom_forms
from ..lowcode import picklists
from ..lowcode.fields import custom_column
from ..lowcode.live import Label, current
from ..security import masking
from ..security.encrypted_copies import reveal_changes


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return value[0], value[1]
    return None, value


def changed_rows(
    model: type, prefix: str, changes: Any, labels: Mapping[str, Any]
) -> list[tuple[str, Any, Any]]:
    """``(label, before, after)`` of each field an entry of a ``model`` record changed."""
    if not isinstance(changes, dict):
        return []
    changes = reveal_changes(prefix, changes)
    column = custom_column(model)
    sensitive = masking.sensitive_fields(model) if masking.masked_for_user() else {}
    bound = picklists.bound_columns(model)
    rows: list[tuple[str, Any, Any]] = []
    for field, value in sorted(changes.items()):
        before, after = _pair(value)
        if field == column:
            rows += _custom_rows(model, before, after)
            continue
        if field in sensitive:
            before, after = (masking.mask(sensitive[field], v) for v in (before, after))
        elif field in bound:
            before, after = (picklists.label(session(), bound[field], v) for v in (before, after))
        rows.append((str(labels.get(field, field)), before, after))
    return rows


def _custom_rows(model: type, before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    defs = {d.name: d for d in current(model)}
    rows = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        defn = defs.get(key)
        if defn is None:  # an inactive field: its key, values as stored
            rows.append((key, old.get(key), new.get(key)))
            continue
        show = custom_forms.display(defn)
        label = str(Label(defn))
        rows.append((label, show(old.get(key)), show(new.get(key))))
    return rows
