"""Custom values copied to other tables keep their encryption.

The audit log (``{field: [old, new]}``) and the outbox (an event's ``changes``) hold copies of a
record's custom values. They are written in the stored form the record's own column uses
(:func:`protect_changes`), so an encrypted field's plaintext is in neither table, and read back
in plain where the CRM shows or hands them on (:func:`reveal_changes`, :func:`reveal_payload`):
event handlers, a person's data export, the test suite's audit check.
"""

from __future__ import annotations

from typing import Any

from flask_appbuilder import Model

from ..lowcode.fields import custom_column
from . import encryption


def model_of_event(prefix: str) -> type | None:
    """The model whose records' events and audit entries are named ``prefix`` (``customer``)."""
    for mapper in Model.registry.mappers:
        if mapper.inherits is None and getattr(mapper.class_, "__crm_event__", None) == prefix:
            return mapper.class_  # type: ignore[no-any-return]
    return None


def _convert(cls: type | None, changes: Any, hook: Any) -> Any:
    if cls is None or not isinstance(changes, dict):
        return changes
    column = custom_column(cls)
    pair = changes.get(column) if column else None
    if not isinstance(pair, list | tuple):
        return changes
    model = cls.__name__
    converted = [hook(model, v) if isinstance(v, dict) and v else v for v in pair]
    return {**changes, column: converted}


def protect_changes(cls: type, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` of a record of ``cls`` with its custom values in their stored form."""
    return _convert(cls, changes, encryption.protect)  # type: ignore[no-any-return]


def reveal_changes(prefix: str, changes: Any) -> Any:
    """The changes of an audit entry of record type ``prefix`` with custom values in plain."""
    return _convert(model_of_event(prefix), changes, encryption.reveal)


def reveal_payload(event_type: str, payload: Any) -> Any:
    """An outbox event's payload with the custom values of its ``changes`` in plain."""
    if not isinstance(payload, dict) or not isinstance(payload.get("changes"), dict):
        return payload
    prefix = event_type.split(".", 1)[0]
    return {**payload, "changes": reveal_changes(prefix, payload["changes"])}
