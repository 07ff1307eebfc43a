"""New records of an import built without attribute events.

Setting an attribute of a mapped object fires SQLAlchemy's events (history, backrefs, the
audit's old-value loading), which costs more than everything else an import does per value.
A new record that will be written with Core statements (:mod:`.bulk`) needs none of that: it
is built here with its values placed in its ``__dict__``, after the model's own ``@validates``
checks ran on each of them, as they would on assignment. The object is a real, transient
instance of the model, so every check written for records (custom fields, picklists, validation
and duplicate rules, record rules) reads it as usual.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import inspect

from ...errors import FieldError


def new_object(model: type) -> Any:
    """A transient instance of ``model`` with its columns' fixed defaults (``kind`` =
    company, ``active``) in place, as the record will be stored."""
    mapper: Any = inspect(model)
    obj = mapper.class_manager.new_instance()
    values = obj.__dict__
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        default = column.default
        values[prop.key] = default.arg if default is not None and default.is_scalar else None
    return obj


@cache
def _validators(model: Any) -> dict[str, Any]:
    mapper: Any = inspect(model)
    return {key: found[0] for key, found in mapper.validators.items()}


def validator(model: type, key: str) -> Any:
    """The model's ``@validates`` function of ``key`` (``self, key, value``), if any."""
    return _validators(model).get(key)


def put(obj: Any, key: str, value: Any) -> None:
    """``obj.key = value`` with the model's validator applied, without attribute events;
    ``FieldError`` from the validator."""
    check = _validators(obj.__class__).get(key)
    if check is not None:
        value = check(obj, key, value)
    obj.__dict__[key] = value


def link(obj: Any, relationship: str, record: Any) -> None:
    """Show ``record`` as ``obj``'s linked record (``contact.customer``) to the checks."""
    obj.__dict__[relationship] = record


def complete(obj: Any) -> list[tuple[str, str]]:
    """Fill what a new record must have and nobody gave: a validator may supply it (a
    generated customer code) or refuse (a name is required); a required column without
    either is reported."""
    mapper: Any = inspect(type(obj))
    problems: list[tuple[str, str]] = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if (
            column.primary_key
            or column.nullable
            or column.default is not None
            or column.server_default is not None
            or obj.__dict__.get(prop.key) not in (None, "")
        ):
            continue
        if prop.key in mapper.validators:
            try:
                put(obj, prop.key, None)
            except FieldError as exc:
                problems.extend(
                    (name, " ".join(str(m) for m in msgs)) for name, msgs in exc.messages.items()
                )
        else:
            problems.append((prop.key, _("This field is required.")))
    return problems


def values(obj: Any) -> dict[str, Any]:
    """The column values of a quietly built object, by attribute key."""
    mapper: Any = inspect(type(obj))
    return {prop.key: obj.__dict__.get(prop.key) for prop in mapper.column_attrs}
