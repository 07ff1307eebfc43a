"""Reading and writing settings with their declared defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l

from ..db import session
from .models import Setting


def _spec(key: str) -> Any:
    specs = current_app.extensions["crm"].settings
    if key not in specs:
        raise KeyError(f"unknown setting {key!r}")
    return specs[key]


def get_setting(key: str) -> Any:
    """The stored value of ``key``, or its declared default."""
    spec = _spec(key)
    row = session().get(Setting, key)
    return spec.default if row is None else row.value


def set_setting(key: str, value: Any) -> None:
    """Store ``value`` for ``key`` after converting it to the declared type; caller commits."""
    spec = _spec(key)
    converters: dict[str, Callable[[Any], Any]] = {
        "int": int,
        "str": str,
        "bool": _to_bool,
        "float": float,
    }
    try:
        value = converters.get(spec.type, lambda v: v)(value)
    except (TypeError, ValueError) as exc:
        message = _l("%(value)s is not a valid %(type)s", value=repr(value), type=spec.type)
        raise ValueError(f"{key}: {message}") from exc
    row = session().get(Setting, key)
    if row is None:
        owner = current_app.extensions["crm"].setting_owner.get(key, "core")
        session().add(Setting(key=key, value=value, plugin=owner))
    else:
        row.value = value


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
