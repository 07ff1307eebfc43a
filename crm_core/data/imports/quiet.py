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


@cache
def _fixed_defaults(model: Any) -> tuple[Any, dict[str, Any]]:
    mapper: Any = inspect(model)
    values = {}
    for prop in mapper.column_attrs:
        default = prop.columns[0].default
        values[prop.key] = default.arg if default is not None and default.is_scalar else None
    return mapper.class_manager, values


def new_object(model: type) -> Any:
    """A transient instance of ``model`` with its columns' fixed defaults (``kind`` =
    company, ``active``) in place, as the record will be stored."""
    manager, values = _fixed_defaults(model)
    obj = manager.new_instance()
    obj.__dict__.update(values)
    return obj


@cache
def _validators(model: Any) -> dict[str, Any]:
    mapper: Any = inspect(model)
    return {key: found[0] for key, found in mapper.validators.items()}


def validators(model: type) -> dict[str, Any]:
    """The model's ``@validates`` functions by attribute key."""
    return _validators(model)  # type: ignore[no-any-return]


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


@cache
def _required(model: Any) -> tuple[tuple[str, bool], ...]:
    """The columns a new record must have and nothing fills: ``(key, has a validator)``."""
    mapper: Any = inspect(model)
    return tuple(
        (prop.key, prop.key in mapper.validators)
        for prop in mapper.column_attrs
        if not (
            prop.columns[0].primary_key
            or prop.columns[0].nullable
            or prop.columns[0].default is not None
            or prop.columns[0].server_default is not None
        )
    )


def complete(obj: Any) -> list[tuple[str, str]]:
    """Fill what a new record must have and nobody gave: a validator may supply it (a
    generated customer code) or refuse (a name is required); a required column without
    either is reported."""
    model: Any = obj.__class__
    found = obj.__dict__
    problems: list[tuple[str, str]] = []
    for key, validated in _required(model):
        if found.get(key) not in (None, ""):
            continue
        if validated:
            try:
                put(obj, key, None)
            except FieldError as exc:
                problems.extend(
                    (name, " ".join(str(m) for m in msgs)) for name, msgs in exc.messages.items()
                )
        else:
            problems.append((key, _("This field is required.")))
    return problems


@cache
def column_keys(model: Any) -> tuple[str, ...]:
    """The attribute keys of ``model``'s columns, in mapper order."""
    mapper: Any = inspect(model)
    return tuple(prop.key for prop in mapper.column_attrs)


def values(obj: Any) -> dict[str, Any]:
    """The column values of a quietly built object, by attribute key."""
    found = obj.__dict__
    model: Any = obj.__class__
    return {key: found.get(key) for key in column_keys(model)}


def rows(objs: list[Any], leave_out: str) -> list[dict[str, Any]]:
    """The column values of quietly built objects of one model, less the column
    ``leave_out`` (the key the database numbers)."""
    model: Any = objs[0].__class__
    keys = [key for key in column_keys(model) if key != leave_out]
    return [{key: found.get(key) for key in keys} for found in (obj.__dict__ for obj in objs)]
