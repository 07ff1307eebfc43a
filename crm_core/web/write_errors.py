"""What a write that fails, or could not be stored, tells the user: a field and a problem.

Flask-AppBuilder answers a duplicate unique value with a 500 and can put SQL text in a 422.
:func:`as_crm_error` turns integrity, data and stale-version errors into 409s and 422s naming
the field (:func:`check_unique_and_references` finds which); :func:`out_of_range` refuses,
before any SQL runs, values no column can store.
"""

from __future__ import annotations

from typing import Any

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from ..db import session
from ..errors import ConflictError, CrmError, FieldError


def _class_for_table(table: Any) -> Any:
    for mapper in Model.registry.mappers:
        if mapper.local_table is table:
            return mapper.class_
    return None


def as_crm_error(exc: BaseException, item: Any) -> CrmError | None:
    """A failed write's error for the user, or ``None`` for an unexpected one. FAB wraps edit
    and delete errors in its own exception: their cause is looked at too."""
    for error in (exc, exc.__cause__):
        if isinstance(error, CrmError):
            return error
        if isinstance(error, DataError):
            return FieldError(
                str(_l("A value could not be stored; check the lengths and characters"))
            )
        if isinstance(error, IntegrityError):
            check_unique_and_references(item)
            return ConflictError(str(_l("The record conflicts with existing data")))
        if isinstance(error, StaleDataError):
            return ConflictError(
                {"version": [str(_l("Someone else changed this record; reload and try again"))]}
            )
    return None


def check_unique_and_references(item: Any) -> None:
    """Raise ConflictError for a unique value another record holds, FieldError for a foreign
    key that names no record. Run before every write."""
    mapper = inspect(type(item))
    table = mapper.local_table
    s = session()
    state = inspect(item)
    pk = state.identity
    for column in table.columns:
        key = mapper.get_property_by_column(column).key
        value = getattr(item, key, None)
        if value is None:
            continue
        if column.unique:
            query = select(type(item)).where(column == value)
            if pk:
                query = query.where(mapper.primary_key[0] != pk[0])
            with s.no_autoflush:
                taken = s.scalar(query.limit(1))
            if taken is not None:
                raise ConflictError(
                    {
                        column.key: [
                            str(_l("%(value)s is already used by another record", value=value))
                        ]
                    }
                )
        if pk and not state.attrs[key].history.has_changes():
            continue  # a link kept as it was is not the user's to prove (it may be hidden)
        for fk in column.foreign_keys:
            target = _class_for_table(fk.column.table)
            if target is None:
                continue
            with s.no_autoflush:
                found = s.get(target, value)
            if found is None:
                raise FieldError(
                    {column.key: [str(_l("No record with id %(value)s", value=value))]}
                )


_INT_LIMITS = {"SmallInteger": 2**15, "Integer": 2**31, "BigInteger": 2**63}


def in_range(column: Any, value: Any) -> bool:
    """Whether an integer column can hold ``value`` (other columns and values: yes)."""
    limit = _INT_LIMITS.get(type(column.type).__name__)
    if limit is None:
        return True
    try:
        number = int(value)
    except (TypeError, ValueError):
        return True  # not a number: the field's own validation answers
    return -limit <= number < limit


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def out_of_range(model: Any, data: dict[str, Any]) -> dict[str, list[str]]:
    """Field errors for values in ``data`` that no column can store: integers too big for
    their columns, text with a NUL character (PostgreSQL stores none)."""
    columns = model.__table__.c
    errors = {
        key: [str(_l("Number out of range"))]
        for key, value in data.items()
        if key in columns and isinstance(value, int) and not in_range(columns[key], value)
    }
    for key, value in data.items():
        if _has_nul(value):
            errors[key] = [str(_l("Contains a character that cannot be stored"))]
    return errors
