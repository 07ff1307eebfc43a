"""Custom fields in queries: typed SQL expressions, list filters and sort order.

A custom field ``grade`` of a model is the column ``custom__grade`` of its screens and APIs.
Its SQL expression reads the JSON path in the field's type (:func:`expression`), so filters
compare numbers as numbers and dates as dates, and lists sort by it; the same expression is
what an index on a searchable field is built on (:mod:`crm_core.lowcode.indexes`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask_appbuilder.models.sqla.filters import (
    FilterContains,
    FilterEqual,
    FilterGreater,
    FilterNotEqual,
    FilterSmaller,
    FilterStartsWith,
)
from sqlalchemy import Numeric, cast, false
from sqlalchemy.sql.elements import ColumnElement

from ..web.search import KeepsFabOperators, escape_like, starts_with
from .fields import FieldDefinition, clean_value, custom_column
from .live import PREFIX, field_of

TEXT_KINDS = ("text", "long_text", "url", "phone", "email")
ORDERED_KINDS = ("integer", "decimal", "money", "date", "datetime")
NUMBER = Numeric(24, 4)


def expression(model: type, defn: FieldDefinition) -> ColumnElement[Any]:
    """``defn``'s value in the rows of ``model``, typed for comparison and sorting."""
    column = getattr(model, custom_column(model) or "custom")
    path = column[defn.name]
    # The path is written into the SQL, not bound: SQLite matches an expression index only
    # against the same literal text (the name is a checked identifier, see fields.NAME).
    path.right.literal_execute = True
    if defn.kind in ("integer", "user", "customer"):
        return path.as_integer()
    if defn.kind in ("decimal", "money"):
        return cast(path.as_string(), NUMBER)
    if defn.kind == "bool":
        return path.as_boolean()
    return path.as_string()


def typed(defn: FieldDefinition, raw: Any) -> Any:
    """What a user typed in a filter, in the type of :func:`expression`; ``ValueError``
    when it is not a value of the field."""
    from ..db import session

    value = clean_value(session(), defn, raw)
    if defn.kind in ("decimal", "money"):
        return Decimal(str(value))
    return value


def is_encrypted(defn: FieldDefinition) -> bool:
    return bool(getattr(defn, "encrypted", False))


class _CustomFilter(KeepsFabOperators):
    """A FAB filter on a ``custom__…`` column: the definition is looked up per query, so a
    changed field (or one removed since the screen was built) is handled."""

    def criterion(self, defn: FieldDefinition, value: Any) -> ColumnElement[bool]:
        raise NotImplementedError

    def apply(self, query: Any, value: Any) -> Any:
        if isinstance(value, list):  # a list screen's URL gives every value of its argument
            for one in value:
                query = self.apply(query, one)
            return query
        defn = field_of(self.model, self.column_name)
        if defn is None or value in (None, ""):
            return query if defn is not None else query.filter(false())
        try:
            return query.filter(self.criterion(defn, value))
        except ValueError:  # not a value this field can hold: nothing matches
            return query.filter(false())


class CustomEqual(_CustomFilter, FilterEqual):
    def criterion(self, defn: FieldDefinition, value: Any) -> ColumnElement[bool]:
        if is_encrypted(defn):
            from ..security.encryption import exact_match

            return exact_match(self.model, defn.name, value)
        if defn.kind == "multi_choice":
            return CustomContains.criterion(self, defn, value)  # type: ignore[arg-type]
        return expression(self.model, defn) == typed(defn, value)


class CustomNotEqual(_CustomFilter, FilterNotEqual):
    def criterion(self, defn: FieldDefinition, value: Any) -> ColumnElement[bool]:
        expr = expression(self.model, defn)
        return expr.is_(None) | (expr != typed(defn, value))


class CustomGreater(_CustomFilter, FilterGreater):
    def criterion(self, defn: FieldDefinition, value: Any) -> ColumnElement[bool]:
        return expression(self.model, defn) > typed(defn, value)


class CustomSmaller(_CustomFilter, FilterSmaller):
    def criterion(self, defn: FieldDefinition, value: Any) -> ColumnElement[bool]:
        return expression(self.model, defn) < typed(defn, value)


class CustomStartsWith(_CustomFilter, FilterStartsWith):
    def criterion(self, defn: FieldDefinition, value: Any) -> ColumnElement[bool]:
        expr = expression(self.model, defn)
        engine = self.datamodel.session.get_bind()
        normalise = None
        if defn.kind == "phone":
            from ..customers.validation import phone_search_prefix

            normalise = phone_search_prefix
        return starts_with(expr, str(value), engine, normalise)


class CustomContains(_CustomFilter, FilterContains):
    def criterion(self, defn: FieldDefinition, value: Any) -> ColumnElement[bool]:
        expr = expression(self.model, defn)
        if defn.kind == "multi_choice":
            # The stored list as JSON text holds each value in double quotes on every backend.
            picked = typed(defn, value)
            needle = '"' + str(picked[0] if isinstance(picked, list) else picked) + '"'
            return expr.like("%" + escape_like(needle) + "%", escape="/")
        return expr.ilike("%" + escape_like(str(value)) + "%", escape="/")


def filters_for(defn: FieldDefinition) -> list[type[_CustomFilter]]:
    """The filters a list offers on ``defn``."""
    if is_encrypted(defn):
        return [CustomEqual]
    if defn.kind in TEXT_KINDS:
        return [CustomStartsWith, CustomEqual, CustomContains, CustomNotEqual]
    if defn.kind in ORDERED_KINDS:
        return [CustomEqual, CustomGreater, CustomSmaller, CustomNotEqual]
    if defn.kind == "multi_choice":
        return [CustomContains]
    return [CustomEqual, CustomNotEqual]


def sortable(defn: FieldDefinition) -> bool:
    return not is_encrypted(defn) and defn.kind not in ("multi_choice", "long_text")


def is_custom(column: str) -> bool:
    return column.startswith(PREFIX)
