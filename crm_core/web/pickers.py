"""Pickers for linked records that scale: a contact's customer, a follow-up's contact.

Flask-AppBuilder renders a many-to-one field (and its list filter) as a select of every record
of the linked model, read on each page: a million customers in every contact form. Here such a
field is a select holding only its current record; the browser asks ``/pick/<name>?q=…`` for
up to :data:`PAGE` records whose name (or code) starts with what the user types, read through
an index and the user's record rules. Models opt in by a :class:`Picker` in :data:`PICKERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, g, jsonify, request, url_for
from flask_appbuilder import BaseView, expose
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import inspect, or_, select
from wtforms import Field
from wtforms.validators import DataRequired, Optional, StopValidation
from wtforms.widgets import html_params

from ..db import model_class, session
from .search import starts_with

#: Records a picker offers per page.
PAGE = 20
#: Pages a picker may ask for (deeper: type more of the name).
MAX_PAGES = 25


@dataclass(frozen=True)
class Picker:
    """How records of ``model`` are picked: by a prefix of the ``search`` columns, in
    ``order``, by users who may list them on the screen ``view``."""

    name: str
    model_name: str
    view: str
    search: tuple[str, ...]
    order: str = "name"

    @property
    def model(self) -> type:
        found = model_class(self.model_name)
        assert found is not None, self.model_name
        return found


PICKERS = {
    "customer": Picker("customer", "Customer", "CustomerView", ("name", "code")),
    "contact": Picker("contact", "Contact", "ContactView", ("name", "mobile")),
}


def picker_for(model: type) -> Picker | None:
    return next((p for p in PICKERS.values() if p.model_name == model.__name__), None)


# --------------------------------------------------------------------------- form field


class RecordPickerWidget:
    """A select with the field's current record only; ``crm-record-picker.js`` asks the
    server for the others as the user types."""

    def __call__(self, field: RecordPickerField, **kwargs: Any) -> Markup:
        kwargs.setdefault("id", field.id)
        kwargs.setdefault("name", field.name)
        classes = f"form-control crm-record-picker {kwargs.pop('class', '')}".strip()
        params = html_params(
            **kwargs,
            **{
                "class": classes,
                "data-url": url_for("RecordPickerView.pick", name=field.picker.name),
                "data-placeholder": str(_l("Type to search")),
            },
        )
        options = ['<option value=""></option>']
        record = field.data
        if record is not None:
            options.append(
                f'<option value="{escape(str(record.id))}" selected>{escape(str(record))}</option>'
            )
        return Markup(f"<select {params}>{''.join(options)}</select>")


class RecordPickerField(Field):
    """A many-to-one field whose value is the linked record, picked by :class:`Picker`.
    A submitted id the user may not read (or that does not exist) is refused."""

    widget = RecordPickerWidget()

    def __init__(self, label: Any = None, validators: Any = None, *, picker: Picker, **kw: Any):
        super().__init__(label, validators, **kw)
        self.picker = picker
        self._unknown = False

    def process_formdata(self, valuelist: list[str]) -> None:
        self._unknown = False
        raw = (valuelist[0] if valuelist else "").strip()
        if not raw:
            self.data = None
            return
        found = None
        if raw.isdigit() and len(raw) < 12:
            found = session().get(self.picker.model, int(raw))  # the user's record rules apply
        if found is None:
            self._unknown = True
        self.data = found

    def pre_validate(self, form: Any) -> None:
        if self._unknown:
            raise StopValidation(str(_l("Choose a record from the list.")))

    def _value(self) -> str:
        return "" if self.data is None else str(self.data.id)


def picker_fields(model: type, columns: list[str], labels: dict[str, Any]) -> dict[str, Field]:
    """Picker fields for the many-to-one links of ``model`` among ``columns`` whose target
    has a :class:`Picker`."""
    mapper: Any = inspect(model)
    out: dict[str, Field] = {}
    for name in columns:
        rel = mapper.relationships.get(name)
        if rel is None or rel.direction.name != "MANYTOONE":
            continue
        picker = picker_for(rel.mapper.class_)
        if picker is None:
            continue
        required = not all(c.nullable for c in rel.local_columns)
        check = DataRequired() if required else Optional()
        out[name] = RecordPickerField(labels.get(name, name), [check], picker=picker)
    return out


# --------------------------------------------------------------------------- the search


class RecordPickerView(BaseView):
    """``/pick/<name>?q=&page=``: records whose name (or code) starts with ``q``, as Select2
    reads them (``{"results": [{"id", "text"}], "pagination": {"more"}}``); ``?id=`` gives one
    record (a filter's current value). Only for users who may list the records."""

    route_base = "/pick"
    default_view = "pick"

    @expose("/<name>")
    def pick(self, name: str):  # type: ignore[no-untyped-def]
        picker = PICKERS.get(name)
        user = g.get("user")
        if picker is None:
            abort(404)
        if user is None or not getattr(user, "is_authenticated", False):
            abort(401)
        if not self.appbuilder.sm.has_access("can_list", picker.view):
            abort(403)
        model = picker.model
        query: Any = select(model)
        if "active" in inspect(model).columns:
            query = query.where(model.active.is_(True))  # type: ignore[attr-defined]
        wanted = request.args.get("id", "").strip()
        if wanted:
            if not (wanted.isdigit() and len(wanted) < 12):
                return jsonify(results=[], pagination={"more": False})
            query = query.where(model.id == int(wanted))  # type: ignore[attr-defined]
            rows = list(session().scalars(query.limit(1)))
            return jsonify(results=_options(rows), pagination={"more": False})
        typed = request.args.get("q", "").strip()[:100]
        page = request.args.get("page", 1, type=int) or 1
        page = min(max(page, 1), MAX_PAGES)
        engine: Any = session().get_bind()
        if typed:
            columns = [getattr(model, c) for c in picker.search]
            query = query.where(or_(*(starts_with(c, typed, engine) for c in columns)))
        order = getattr(model, picker.order)
        query = query.order_by(order, model.id).offset((page - 1) * PAGE).limit(PAGE + 1)  # type: ignore[attr-defined]
        rows = list(session().scalars(query))
        more = len(rows) > PAGE and page < MAX_PAGES
        return jsonify(results=_options(rows[:PAGE]), pagination={"more": more})


def _options(rows: list[Any]) -> list[dict[str, Any]]:
    return [{"id": row.id, "text": str(row)} for row in rows]
