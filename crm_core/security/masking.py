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


def mask_dict(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """A serialised record of ``cls`` (REST answer) with its sensitive keys masked."""
    fields = sensitive_fields(cls)
    if fields and masked_for_user():
        for key, kind in fields.items():
            if key in data:
                data[key] = mask(kind, data[key])
    return data


def unchanged_masked(cls: type, item: Any, field: str, value: Any) -> bool:
    """Whether ``value`` sent for ``item.field`` is just its masked form sent back."""
    kind = sensitive_fields(cls).get(field)
    if kind is None or item is None or value in (None, ""):
        return False
    stored = getattr(item, field, None)
    return stored not in (None, "") and value == mask(kind, stored) and value != stored
