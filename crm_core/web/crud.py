"""Base classes for generated CRUD screens and REST APIs with clean errors.

Flask-AppBuilder answers a duplicate unique value with a 500 and can put SQL text in a 422. These
bases check unique values and foreign keys before writing, turn integrity and stale-version errors
into 409s naming the field, and turn model validation errors into 422s, so no response carries
SQL, a path or a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import flash, redirect, request
from flask_appbuilder import Model, ModelRestApi, ModelView
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from ..db import session
from ..errors import ConflictError, CrmError, FieldError

log = logging.getLogger(__name__)


def _class_for_table(table: Any) -> Any:
    for mapper in Model.registry.mappers:
        if mapper.local_table is table:
            return mapper.class_
    return None


def check_unique_and_references(item: Any) -> None:
    """Raise ConflictError for a unique value another record holds, FieldError for a foreign
    key that names no record. Run before every write."""
    mapper = inspect(type(item))
    table = mapper.local_table
    s = session()
    pk = inspect(item).identity
    for column in table.columns:
        value = getattr(item, mapper.get_property_by_column(column).key, None)
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


class CrmInterface(SQLAInterface):
    """The data interface every core and plugin view uses: clean errors on write."""

    def _write(self, op: str, item: Any) -> None:
        try:
            getattr(super(), op)(item)
        except IntegrityError:
            self.session.rollback()
            check_unique_and_references(item)
            raise ConflictError(str(_l("The record conflicts with existing data"))) from None
        except StaleDataError:
            self.session.rollback()
            raise ConflictError(
                {"version": [str(_l("Someone else changed this record; reload and try again"))]}
            ) from None
        except CrmError:
            self.session.rollback()
            raise
        except Exception as exc:  # FAB wraps edit/delete errors in DatabaseException
            self.session.rollback()
            cause = exc.__cause__
            if isinstance(cause, IntegrityError | StaleDataError):
                raise ConflictError(str(_l("The record conflicts with existing data"))) from None
            raise

    def add(self, item: Any, commit: bool = True) -> None:
        check_unique_and_references(item)
        self._write("add", item)

    def edit(self, item: Any, commit: bool = True) -> None:
        check_unique_and_references(item)
        self._write("edit", item)

    def delete(self, item: Any, commit: bool = True) -> None:
        self._write("delete", item)


class CrmModelView(ModelView):
    """A generated screen. Business records are archived, not deleted."""

    list_template = "appbuilder/general/model/list.html"
    page_size = 25

    @action(
        "archive",
        _l("Archive"),
        _l("Archive the selected records?"),
        "fa-archive",
        single=False,
    )
    def archive(self, items: Any) -> Any:
        """Hide the records from lists and pickers while keeping them and their history."""
        if not isinstance(items, list):
            items = [items]
        count = 0
        for item in items:
            if item is not None and getattr(item, "active", False):
                item.active = False
                count += 1
        try:
            session().commit()
        except CrmError as exc:
            session().rollback()
            flash(str(exc), "danger")
        else:
            flash(str(_l("%(count)s records archived", count=count)), "success")
        self.update_redirect()
        return redirect(self.get_redirect())


class CrmModelRestApi(ModelRestApi):
    """A REST API whose writes answer 400/404/409/422 with field messages, never 500."""

    allow_browser_login = True
    page_size = 25
    #: Values filled in for fields a POST leaves out: field name -> zero-argument callable.
    post_defaults: dict[str, Any] = {}

    def _json_body(self) -> dict[str, Any] | None:
        body = request.get_json(silent=True) if request.is_json else None
        return body if isinstance(body, dict) else None

    def _bad_body(self):  # type: ignore[no-untyped-def]
        return self.response(
            400, message={"body": [str(_l("The request body must be a JSON object"))]}
        )

    def _error(self, exc: CrmError):  # type: ignore[no-untyped-def]
        return self.response(exc.status, message=exc.messages)

    def post_headless(self):  # type: ignore[no-untyped-def]
        data = self._json_body()
        if data is None:
            return self._bad_body()
        for field, make in self.post_defaults.items():
            if data.get(field) in (None, ""):
                data[field] = make()
        try:
            item = self.add_model_schema.load(data)
            self.pre_add(item)
            self.datamodel.add(item)
        except ValidationError as err:
            session().rollback()
            return self.response_422(message=err.messages)
        except CrmError as exc:
            session().rollback()
            return self._error(exc)
        self.post_add(item)
        return self.response(
            201,
            result=self.add_model_schema.dump(item, many=False),
            id=self.datamodel.get_pk_value(item),
        )

    def put_headless(self, pk: Any):  # type: ignore[no-untyped-def]
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            return self.response_404()
        data = self._json_body()
        if data is None:
            return self._bad_body()
        expected = data.pop("version", None)
        try:
            if expected is not None and getattr(item, "version", expected) != expected:
                raise ConflictError(
                    {"version": [str(_l("Someone else changed this record; reload and try again"))]}
                )
            merged = self._merge_update_item(item, data)
            item = self.edit_model_schema.load(merged, instance=item)
            self.pre_update(item)
            self.datamodel.edit(item)
        except ValidationError as err:
            session().rollback()
            return self.response_422(message=err.messages)
        except CrmError as exc:
            session().rollback()
            return self._error(exc)
        self.post_update(item)
        return self.response(200, result=self.edit_model_schema.dump(item, many=False))

    def delete_headless(self, pk: Any):  # type: ignore[no-untyped-def]
        """Business records (with an ``active`` flag) are archived; others are deleted."""
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            return self.response_404()
        try:
            self.pre_delete(item)
            if hasattr(item, "active"):
                item.active = False
                self.datamodel.edit(item)
            else:
                self.datamodel.delete(item)
        except CrmError as exc:
            session().rollback()
            return self._error(exc)
        self.post_delete(item)
        return self.response(200, message="OK")
