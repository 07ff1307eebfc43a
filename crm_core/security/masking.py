"""Field masking: phones, e-mails and ID numbers shown as ``138****1234`` to users who may not
read them in full.

A model lists its sensitive columns and how each is masked as ``__crm_sensitive__ =
{"phone": "phone", "email": "email"}`` (kinds: ``phone``, ``email``, ``id``, ``text``). Users
whose roles have ``can_unmasked`` on "Sensitive fields" read them as stored (Admin,
Integration); everyone else reads them masked, in lists, show and 360° pages, edit forms and the
REST API. Users whose roles have ``can_reveal`` may reveal one value of one record at a time;
each reveal is written to the audit trail (:mod:`crm_core.security.reveal`).

An edit form or a ``PUT`` that sends a masked value back unchanged keeps the stored value, so
masking never overwrites data. ``crm`` commands and jobs read values as stored.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
from flask import current_app, g, has_request_context

SENSITIVE_VIEW = "Sensitive fields"
UNMASKED = "can_unmasked"
REVEAL = "can_reveal"
STARS = "****"


def sensitive_fields(cls: type) -> dict[str, str]:
    """The model's sensitive columns and their kinds (empty for models without any)."""
    fields = getattr(cls, "__crm_sensitive__", None)
    return dict(fields) if isinstance(fields, dict) else {}


def mask(kind: str, value: Any) -> Any:
    """``value`` with the part that identifies a person replaced by stars."""
    if value is None or value == "":
        return value
    text = str(value)
    if kind == "phone":
        return _mask_phone(text)
    if kind == "email":
        local, _, domain = text.partition("@")
        return f"{local[:1]}{STARS}@{domain}" if domain else _keep(text, 1, 0)
    if kind == "id":
        return _keep(text, 4, 4)
    return _keep(text, 1, 0)


def _keep(text: str, head: int, tail: int) -> str:
    if len(text) <= head + tail:
        return STARS
    return text[:head] + STARS + (text[-tail:] if tail else "")


def _mask_phone(text: str) -> str:
    """``+8613812341234`` -> ``138****1234``; other countries keep their code."""
    try:
        number = phonenumbers.parse(text, None)
        national = str(number.national_number)
        prefix = "" if number.country_code == 86 else f"+{number.country_code} "
    except phonenumbers.NumberParseException:
        national, prefix = "".join(ch for ch in text if ch.isdigit()), ""
    if len(national) <= 7:
        return prefix + _keep(national, 1, 2)
    return prefix + national[:3] + STARS + national[-4:]


def _allowed(permission: str) -> bool:
    sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
    return bool(sm.has_access(permission, SENSITIVE_VIEW))


def masked_for_user() -> bool:
    """Whether this request's user reads sensitive fields masked (once per request)."""
    if not has_request_context():
        return False
    cached = g.get("_crm_masked")
    if cached is None:
        cached = not _allowed(UNMASKED)
        g._crm_masked = cached
    return bool(cached)


def may_reveal() -> bool:
    """Whether this request's user may reveal one value at a time."""
    return has_request_context() and (not masked_for_user() or _allowed(REVEAL))


def shown(obj: Any, field: str) -> Any:
    """The value of ``obj.field`` as this request's user may read it."""
    value = getattr(obj, field)
    kind = sensitive_fields(type(obj)).get(field)
    if kind is None or not masked_for_user():
        return value
    return mask(kind, value)


def custom_kind(field_kind: str) -> str:
    """How a custom field marked sensitive is masked: phones and e-mails as such, anything
    else like an ID number (first and last four characters kept)."""
    return field_kind if field_kind in ("phone", "email") else "id"


def sensitive_custom(cls: type) -> dict[str, str]:
    """The custom fields of ``cls`` marked sensitive, and how each is masked."""
    from ..lowcode.live import current

    return {d.name: custom_kind(d.kind) for d in current(cls) if d.sensitive}


def mask_dict(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """A serialised record of ``cls`` (REST answer) with its sensitive keys masked, custom
    fields included."""
    if not masked_for_user():
        return data
    for key, kind in sensitive_fields(cls).items():
        if key in data:
            data[key] = mask(kind, data[key])
    column = getattr(cls, "__crm_custom_fields__", None)
    values = data.get(column) if isinstance(column, str) else None
    if isinstance(values, dict):
        hidden = sensitive_custom(cls)
        data[column] = {  # type: ignore[index]
            k: mask(hidden[k], v) if k in hidden and isinstance(v, str) else v
            for k, v in values.items()
        }
    return data


def keeps_stored(kind: str, stored: Any, sent: Any) -> bool:
    """Whether ``sent`` is just the masked form of ``stored`` sent back."""
    if stored in (None, "") or sent in (None, ""):
        return False
    return bool(sent == mask(kind, stored) and sent != stored)


def unchanged_masked(cls: type, item: Any, field: str, value: Any) -> bool:
    """Whether ``value`` sent for ``item.field`` is just its masked form sent back."""
    kind = sensitive_fields(cls).get(field)
    if kind is None or item is None:
        return False
    return keeps_stored(kind, getattr(item, field, None), value)
