"""The column type of custom values: JSON (JSONB on PostgreSQL), with hooks on the way in and out.

A model's custom column is declared as ``mapped_column(CustomValues("Customer"))`` beside
``__crm_custom_fields__ = "custom"``. Values pass through the registered hooks when they are
written (:data:`BIND_HOOKS`) and read (:data:`RESULT_HOOKS`); encryption at rest
(:mod:`crm_core.security.encryption`) uses them, so every query, ORM or Core, sees the stored
form in the database and the plain values in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

#: ``hook(model, values) -> values``, applied in order before a value is sent to the database.
BIND_HOOKS: list[Callable[[str, dict[str, Any]], dict[str, Any]]] = []
#: ``hook(model, values) -> values``, applied in order to a value read from the database.
RESULT_HOOKS: list[Callable[[str, dict[str, Any]], dict[str, Any]]] = []


class CustomValues(TypeDecorator[Any]):
    """A JSON object of custom values of ``model`` (JSONB on PostgreSQL)."""

    impl = JSON
    cache_ok = True

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, dict) and value:
            for hook in BIND_HOOKS:
                value = hook(self.model, value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, dict) and value:
            for hook in RESULT_HOOKS:
                value = hook(self.model, value)
        return value

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        return self.impl_instance.coerce_compared_value(op, value)
