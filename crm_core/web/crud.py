"""Base classes for generated CRUD screens and REST APIs with clean errors.

Every write goes through :class:`CrmInterface`, whose failures become errors naming the field
(:mod:`crm_core.web.write_errors`); screens and APIs answer them as 409s and 422s, so no
response carries SQL, a path or a traceback.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

from flask import abort, flash, g, has_request_context, redirect, request, url_for
from flask_appbuilder import ModelRestApi, ModelView
from flask_appbuilder.actions import action
from flask_appbuilder.api import expose, merge_response_func, safe
from flask_appbuilder.api.schemas import get_list_schema
from flask_appbuilder.baseviews import expose as expose_view
from flask_appbuilder.exceptions import (
    FABException,
    InvalidColumnArgsFABException,
    InvalidOrderByColumnFABException,
)
from flask_appbuilder.security.decorators import has_access, permission_name, protect
from flask_appbuilder.urltools import (
    get_filter_args,
    get_order_args,
    get_page_args,
    get_page_size_args,
)
from flask_appbuilder.widgets import ListWidget
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import inspect

from ..db import session
from ..errors import ConflictError, CrmError, FieldError
from ..lowcode import duplicates, layout_screen, live, picklists
from ..lowcode import forms as custom_forms
from ..lowcode import query as custom_query
from ..lowcode import schemas as custom_schemas
from ..lowcode.fields import custom_column
from ..security import masking
from . import pickers
from .listing import CursorError, ListingInterface
from .rison import rison
from .search import PrefixNormaliser
from .write_errors import as_crm_error, check_unique_and_references, in_range, out_of_range

log = logging.getLogger(__name__)


def default_owner(item: Any) -> None:
    """A new record belongs to the signed-in user who creates it, unless an owner was given
    (as ``owner_id`` in the API or the ``owner`` field of a form)."""
    user = getattr(g, "user", None)
    if user is not None and item.owner_id is None and item.owner is None:
        item.owner = user


class CrmInterface(ListingInterface):
    """The data interface every core and plugin view uses: clean errors on write, and lists
    that stay fast on big tables (see :mod:`crm_core.web.listing` and :mod:`.search`).

    ``prefix_search`` maps columns stored in a normal form to a function that turns what a
    user types into the stored form of a prefix (``{"phone": phone_search_prefix}``), so
    "starts with" finds ``+8613812345678`` from ``138 1234``.
    """

    def __init__(
        self,
        obj: Any,
        session: Any = None,
        *,
        prefix_search: Mapping[str, PrefixNormaliser] | None = None,
    ) -> None:
        super().__init__(obj, session)
        self.prefix_search = dict(prefix_search or {})

    @staticmethod
    def _get_attr_value(item: Any, col: str) -> Any:
        """FAB's value of a list or show column; ``custom__…`` columns read custom fields."""
        if col.startswith(live.PREFIX):
            return custom_forms.value_of(item, col)
        return ListingInterface._get_attr_value(item, col)

    def get(self, id: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002 - FAB's name
        """FAB's lookup by primary key; an id no column could hold finds nothing (instead of a
        database error)."""
        if not in_range(self.obj.__table__.c[self.get_pk_name()], id):
            return None
        return super().get(id, *args, **kwargs)

    def _write(self, op: str, item: Any) -> None:
        try:
            getattr(super(), op)(item)
            if has_request_context():  # "warn" duplicate rules: shown by the screen or API
                g.crm_warnings = duplicates.pop_warnings(self.session)
        except Exception as exc:
            self.session.rollback()
            try:
                error = as_crm_error(exc, item)
            except CrmError as named:  # a unique value or a reference, named by its field
                error = named
            if error is None:
                raise
            g.crm_write_error = str(error)  # what an edit form shows (CrmModelView)
            raise error from None

    def add(self, item: Any, commit: bool = True) -> None:
        check_unique_and_references(item)
        self._write("add", item)

    def edit(self, item: Any, commit: bool = True) -> None:
        check_unique_and_references(item)
        self._write("edit", item)

    def delete(self, item: Any, commit: bool = True) -> None:
        """Archive a business record (one with an ``active`` flag); delete anything else.

        So "delete" on any screen or API keeps the record and its history; it leaves lists and
        pickers and can be restored.
        """
        if hasattr(item, "active"):
            item.active = False
            self._write("edit", item)
        else:
            self._write("delete", item)


class CrmListWidget(ListWidget):
    """The list table, with each row's buttons built once per page (see the template)."""

    template = "crm/widgets/list.html"


class KeepMasked:
    """Edit-form validator: a sensitive field sent back in its masked form keeps the stored
    value (and then passes the field's other validators, which see the stored value)."""

    def __init__(self, model: type) -> None:
        self.model = model

    def __call__(self, form: Any, field: Any) -> None:
        pk = getattr(form, "_id", None)
        if pk is None or not masking.masked_for_user():
            return
        item = session().get(self.model, pk)
        if masking.unchanged_masked(self.model, item, field.name, field.data):
            field.data = getattr(item, field.name)


class CrmModelView(ModelView):
    """A generated screen. Business records are archived, not deleted. Sensitive fields
    (``__crm_sensitive__``) are masked on lists, show pages and edit forms for users who may
    not read them in full. The record type's layout for the user's role (Administration →
    页面布局) arranges the forms, the show page and the list of each request
    (:mod:`crm_core.lowcode.layout_screen`)."""

    list_template = "appbuilder/general/model/list.html"
    list_widget = CrmListWidget
    page_size = 25
    #: Whether the record type's layouts apply to this screen (and, for the first such screen
    #: of a record type, whether the layout designer offers its fields). A second screen of
    #: the same records with a purpose of its own (the shared pool) says ``False``.
    crm_layout = True

    def __init__(self, **kwargs: Any) -> None:
        self._bind_picklists()
        self._bind_pickers()
        sensitive = masking.sensitive_fields(self.datamodel.obj)
        if sensitive:
            formatters: dict[str, Any] = dict(getattr(self, "formatters_columns", None) or {})
            validators: dict[str, list[Any]] = {
                k: list(v) for k, v in (getattr(self, "validators_columns", None) or {}).items()
            }
            for field, kind in sensitive.items():
                formatters[field] = _masking_formatter(kind, formatters.get(field))
                validators[field] = [KeepMasked(self.datamodel.obj), *validators.get(field, [])]
            self.formatters_columns = formatters
            self.validators_columns = validators
        super().__init__(**kwargs)
        if not hasattr(self.datamodel.obj, "active"):  # nothing to archive: no such action
            self.actions.pop("archive", None)
            allowed: list[str] = list(getattr(self, "base_permissions", None) or [])
            self.base_permissions = [p for p in allowed if p != "can_archive"]
        self._crm_static = {
            name: copy.copy(getattr(self, name))
            for name in (
                "label_columns",
                "formatters_columns",
                "add_columns",
                "edit_columns",
                "show_columns",
                "list_columns",
                "search_columns",
                "order_columns",
                "add_form",
                "edit_form",
                "search_form",
            )
        }

    def _bind_picklists(self) -> None:
        """Columns bound to picklists (``__crm_picklists__``) are selects of the list's values
        on forms and in filters, and show their labels."""
        bound = picklists.bound_columns(self.datamodel.obj)
        if not bound:
            return
        labels = getattr(self, "label_columns", None) or {}
        formatters = dict(getattr(self, "formatters_columns", None) or {})
        extra: dict[str, dict[str, Any]] = {}
        for kind in ("add", "edit", "search"):
            extra[kind] = dict(getattr(self, f"{kind}_form_extra_fields", None) or {})
        for column, name in bound.items():
            formatters.setdefault(column, custom_forms.picklist_formatter(name))
            label = labels.get(column, column)
            for kind in ("add", "edit", "search"):
                extra[kind].setdefault(column, custom_forms.picklist_field(name, label))
        self.formatters_columns = formatters
        for kind in ("add", "edit", "search"):
            setattr(self, f"{kind}_form_extra_fields", extra[kind])

    def _bind_pickers(self) -> None:
        """Links to records that may number millions (a contact's customer) are picked by
        typing on forms and in filters, not chosen from a select of every record
        (:mod:`crm_core.web.pickers`)."""
        labels = getattr(self, "label_columns", None) or {}
        model = self.datamodel.obj
        for kind in ("add", "edit", "search"):
            columns = list(getattr(self, f"{kind}_columns", None) or [])
            extra = dict(getattr(self, f"{kind}_form_extra_fields", None) or {})
            for name, field in pickers.picker_fields(model, columns, labels).items():
                extra.setdefault(name, field)
            setattr(self, f"{kind}_form_extra_fields", extra)

    def refresh_custom_fields(self) -> None:
        """Add the model's current custom fields to the forms, show page, list filters and
        sort order (and the list columns, for fields marked searchable); see
        :mod:`crm_core.lowcode.live`."""
        column = custom_column(self.datamodel.obj)
        if column is None:
            return
        static = self._crm_static
        defs = live.current(self.datamodel.obj)
        names = {live.column_name(d.name): d for d in defs}

        def plus(columns: list[str], wanted: Callable[[Any], bool] = lambda d: True) -> list[str]:
            kept = [c for c in columns if c != column]
            return kept + [n for n, d in names.items() if wanted(d) and n not in kept]

        self.label_columns = {
            **static["label_columns"],
            **{n: live.Label(d) for n, d in names.items()},
        }
        self.formatters_columns = {
            **static["formatters_columns"],
            **{n: custom_forms.display(d) for n, d in names.items()},
        }
        self.add_columns = plus(static["add_columns"])
        self.edit_columns = plus(static["edit_columns"])
        self.show_columns = plus(static["show_columns"])
        self.list_columns = plus(static["list_columns"], lambda d: d.searchable)
        self.search_columns = plus(static["search_columns"], lambda d: d.kind != "long_text")
        self.order_columns = plus(static["order_columns"], custom_query.sortable)
        model = self.datamodel.obj
        self.add_form = custom_forms.form_class(static["add_form"], defs, model)
        self.edit_form = custom_forms.form_class(static["edit_form"], defs, model)
        search_fields = {
            n: custom_forms.search_field(d) for n, d in names.items() if n in self.search_columns
        }
        self.search_form = type(
            static["search_form"].__name__, (static["search_form"],), search_fields
        )
        self._filters = self.datamodel.get_filters(self.search_columns)

    def _add(self) -> Any:
        """FAB's add, in the user's layout, except that a refused write (a validation or
        duplicate rule, a picklist value, a taken code, a record rule) shows its messages under
        the fields, with what the user typed kept; a saved one flashes its warnings (a possible
        duplicate)."""
        get_filter_args(self._filters, disallow_if_not_in_search=False)
        exclude_cols = self._filters.get_relation_cols()
        form = cast(Any, self._form_class("add", exclude_cols)).refresh()
        if request.method == "POST":
            self._fill_form_exclude_cols(exclude_cols, form)
            if form.validate():
                self.process_form(form, True)
                if self._save(form, self.datamodel.obj(), created=True):
                    return None
            return self._get_add_widget(form=form, exclude_cols=exclude_cols)
        self.update_redirect()
        return self._get_add_widget(form=form, exclude_cols=exclude_cols)

    def _edit(self, pk: Any) -> Any:
        """FAB's edit, in the user's layout, with refused writes shown under the fields as in
        :meth:`_add`."""
        get_filter_args(self._filters, disallow_if_not_in_search=False)
        exclude_cols = self._filters.get_relation_cols()
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            abort(404)
        pk = self.datamodel.get_pk_value(item)
        form_class = cast(Any, self._form_class("edit", exclude_cols))
        if request.method != "POST":
            form = form_class.refresh(obj=item)
            self.prefill_form(form, pk)
            self.update_redirect()
        else:
            form = form_class.refresh(request.form)
            self._fill_form_exclude_cols(exclude_cols, form)
            form._id = pk
            if form.validate():
                self.process_form(form, False)
                if self._save(form, item, created=False):
                    return None
        widgets = self._get_edit_widget(form=form, exclude_cols=exclude_cols)
        return self._get_related_views_widgets(
            item,
            filters={},
            orders=get_order_args(),
            pages=get_page_args(),
            page_sizes=get_page_size_args(),
            widgets=widgets,
        )

    def _layout(self) -> layout_screen.Applied | None:
        """This request's layout of the screen (``None``: the screen as configured)."""
        return layout_screen.applied(self)

    def _layout_fieldsets(self, kind: str) -> list[tuple[str, dict[str, list[str]]]] | None:
        """The sections of this request's ``add``, ``edit`` or ``show`` page (``None``: the
        screen's own)."""
        shown = self._layout()
        return getattr(shown, f"{kind}_fieldsets") if shown is not None else None

    def _form_class(self, kind: str, exclude_cols: list[str]) -> type:
        """The add or edit form class of this request: without the fields the user's layout
        leaves out (a field set by the link's filter stays, unseen, as FAB fills it)."""
        base: type = getattr(self, f"{kind}_form")
        sets = self._layout_fieldsets(kind)
        if not sets:
            return base
        keep = [*layout_screen.columns_of(sets), *exclude_cols]
        return layout_screen.form_without(self, base, keep)

    def _get_add_widget(  # type: ignore[no-untyped-def]
        self, form, exclude_cols=None, widgets=None
    ):
        """FAB's add form, in the sections of the user's layout."""
        return self._form_widget("add", form, exclude_cols, widgets)

    def _get_edit_widget(  # type: ignore[no-untyped-def]
        self, form, exclude_cols=None, widgets=None
    ):
        """FAB's edit form, in the sections of the user's layout."""
        return self._form_widget("edit", form, exclude_cols, widgets)

    def _form_widget(self, kind: str, form: Any, exclude_cols: Any, widgets: Any) -> Any:
        sets = self._layout_fieldsets(kind)
        columns = layout_screen.columns_of(sets) if sets else getattr(self, f"{kind}_columns")
        widgets = widgets or {}
        widgets[kind] = getattr(self, f"{kind}_widget")(
            form=form,
            include_cols=columns,
            exclude_cols=exclude_cols or [],
            fieldsets=sets or getattr(self, f"{kind}_fieldsets"),
        )
        return widgets

    def _get_show_widget(  # type: ignore[no-untyped-def]
        self, pk, item, widgets=None, actions=None, show_fieldsets=None
    ):
        """FAB's show page, in the sections of the user's layout."""
        sets = self._layout_fieldsets("show")
        if not sets or show_fieldsets:
            return super()._get_show_widget(pk, item, widgets, actions, show_fieldsets)
        columns = layout_screen.columns_of(sets)
        widgets = widgets or {}
        widgets["show"] = self.show_widget(
            pk=pk,
            label_columns=self.label_columns,
            include_columns=columns,
            value_columns=self.datamodel.get_values_item(item, columns),
            formatters_columns=self.formatters_columns,
            actions=actions or self.actions,
            fieldsets=sets,
            modelview_name=self.__class__.__name__,
        )
        return widgets

    def _save(self, form: Any, item: Any, created: bool) -> bool:
        """Fill ``item`` from ``form`` and write it; whether the screen moves on. A write the
        CRM refuses shows the form again, its messages under the fields they name (or above
        the form)."""
        try:
            form.populate_obj(item)
            if created:
                self.pre_add(item)
                self.datamodel.add(item)
            else:
                self.pre_update(item)
                self.datamodel.edit(item)
        except CrmError as exc:  # shown with the form, what the user typed kept
            session().rollback()
            if not self._show_under_fields(form, exc):
                flash(str(exc), "danger")
            return False
        except ValueError as exc:  # a screen's own pre_add / pre_update refusal
            session().rollback()
            flash(str(exc), "danger")
            return True
        if created:
            self.post_add(item)
        else:
            self.post_update(item)
        flash(self.add_row_message if created else self.edit_row_message, "success")
        self._flash_warnings()
        return True

    def _show_under_fields(self, form: Any, exc: CrmError) -> bool:
        """Put a refused write's messages under the form's fields (``custom.grade`` under
        ``custom__grade``, ``owner_id`` under ``owner``); whether every message found a field."""
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        column = custom_column(self.datamodel.obj)
        placed = 0
        for key, texts in messages.items():
            name = key
            if column and key.startswith(column + "."):
                name = live.PREFIX + key[len(column) + 1 :]
            elif key not in form and key.endswith("_id") and key[:-3] in form:
                name = key[:-3]
            if name in form:
                form[name].errors = [*form[name].errors, *[str(t) for t in texts]]
                placed += 1
        return bool(messages) and placed == len(messages)

    def _flash_warnings(self) -> None:
        for warning in g.pop("crm_warnings", None) or []:
            flash(str(_l("Saved. %(warning)s", warning=warning)), "warning")

    @property
    def database_error_message(self) -> str:  # type: ignore[override]
        """What FAB flashes when an edit fails: the write's own message (a record rule, a
        taken value, a stale version) when it gave one."""
        return str(g.get("crm_write_error") or _l("Database error"))

    def process_form(self, form: Any, is_created: bool) -> None:
        """An edit form leaves alone a link to a record the user may not see: its picker could
        not offer that record, so the empty choice means "unchanged", not "remove"."""
        pk = getattr(form, "_id", None)
        if is_created or pk is None:
            return
        item = self.datamodel.get(pk)
        if item is None:
            return
        mapper = inspect(type(item))
        for name in [f.name for f in form if f.data is None]:
            rel = mapper.relationships.get(name)
            if rel is None or rel.direction.name != "MANYTOONE":
                continue
            (fk,) = rel.local_columns
            stored = getattr(item, fk.key)
            if stored is not None and session().get(rel.mapper.class_, stored) is None:
                del form[name]

    def prefill_form(self, form: Any, pk: Any) -> None:
        """The edit form shows the custom values, and sensitive values masked to users who
        may not read them."""
        if getattr(form, "_crm_custom_defs", None):
            item = self.datamodel.get(pk)
            if item is not None:
                custom_forms.prefill(form, item)
        if not masking.masked_for_user():
            return
        for field, kind in masking.sensitive_fields(self.datamodel.obj).items():
            if field in form:
                form[field].data = masking.mask(kind, form[field].data)

    @expose_view("/list/")
    @has_access
    def list(self):  # type: ignore[no-untyped-def]
        """FAB's list; a filter value that does not fit its field (``owner=abc``) is named in
        the user's language and the list shown without filters (FAB flashed its exception)."""
        self.update_redirect()
        try:
            widgets = self._list()
        except FABException:
            names = dict.fromkeys(
                k.split("_", 3)[-1] for k in request.args if k.startswith("_flt_")
            )
            fields = "、".join(str(self.label_columns.get(n) or n) for n in names)
            flash(
                _(
                    "A filter of the list holds a value that does not fit its field (%(fields)s).",
                    fields=fields,
                ),
                "warning",
            )
            return redirect(url_for(f"{self.endpoint}.list"))
        return self.render_template(self.list_template, title=self.list_title, widgets=widgets)

    def _get_list_widget(  # type: ignore[no-untyped-def]
        self,
        filters,
        actions=None,
        order_column="",
        order_direction="",
        page=None,
        page_size=None,
        widgets=None,
        **kwargs,
    ):
        """FAB's list widget fed by :meth:`CrmInterface.query_page`: no full count on big
        tables, deep pages through the deferred join, related columns loaded in one query."""
        if not isinstance(self.datamodel, CrmInterface):
            return super()._get_list_widget(
                filters, actions, order_column, order_direction, page, page_size, widgets, **kwargs
            )
        widgets = widgets or {}
        actions = actions or self.actions
        page_size = page_size or self.page_size
        shown = self._layout()  # the columns and default order of the user's layout
        list_columns = shown.list_columns if shown is not None else self.list_columns
        base_order = shown.base_order if shown is not None else self.base_order
        if order_column and order_column not in self.order_columns:
            order_column = ""  # a link made up by hand: the list's own order instead
        if not order_column and base_order:
            order_column, order_direction = base_order
        if order_direction not in ("asc", "desc"):
            order_direction = "asc"
        joined_filters = filters.get_joined_filters(self._base_filters)
        eager = tuple(c for c in list_columns if self.datamodel.is_relation_many_to_one(c))
        result = self.datamodel.query_page(
            joined_filters,
            order_column,
            order_direction,
            page=page,
            page_size=page_size,
            eager=eager,
        )
        pks = [self._serialize_pk_if_composite(pk) for pk in self.datamodel.get_keys(result.rows)]
        widgets["list"] = self.list_widget(
            label_columns=self.label_columns,
            include_columns=list_columns,
            value_columns=self.datamodel.get_values(result.rows, list_columns),
            order_columns=self.order_columns,
            formatters_columns=self.formatters_columns,
            page=page,
            page_size=page_size,
            count=result.count,
            count_is_estimate=result.count_is_estimate,
            pks=pks,
            actions=actions,
            filters=filters,
            modelview_name=self.__class__.__name__,
            **kwargs,
        )
        return widgets

    @action(
        "archive",
        _l("Archive"),
        _l("Archive the selected records?"),
        "fa-archive",
        single=False,
    )
    def archive(self, items: Any) -> Any:
        """Hide the records from lists and pickers while keeping them and their history."""

        def archive_one(item: Any) -> bool:
            if not getattr(item, "active", False):
                return False
            item.active = False
            return True

        return self.apply_to_listed(
            items, archive_one, lambda n: str(_l("%(count)s records archived", count=n))
        )

    def apply_to_listed(
        self, items: Any, change: Callable[[Any], bool], done: Callable[[int], str]
    ) -> Any:
        """An action's work: ``change`` each selected record this screen lists (the action
        names records by id; its base filters, e.g. the pool's "no owner", still apply), commit
        once, and flash ``done(count)`` or the write's error."""
        if not isinstance(items, list):
            items = [items]
        count = 0
        for item in items:
            if item is None:
                continue
            item = self.datamodel.get(self.datamodel.get_pk_value(item), self._base_filters)
            if item is not None and change(item):
                count += 1
        try:
            session().commit()
        except CrmError as exc:
            session().rollback()
            flash(str(exc), "danger")
        else:
            flash(done(count), "success")
        self.update_redirect()
        return redirect(self.get_redirect())


def _masking_formatter(kind: str, inner: Any) -> Any:
    def formatter(value: Any) -> Any:
        if masking.masked_for_user():
            value = masking.mask(kind, value)
        if inner:
            return inner(value)
        return "" if value is None else value  # a list prints a formatter's None as "None"

    return formatter


class CrmModelRestApi(ModelRestApi):
    """A REST API whose writes answer 400/404/409/422 with field messages, never 500."""

    allow_browser_login = True
    page_size = 25
    #: Values filled in for fields a POST leaves out: field name -> zero-argument callable.
    post_defaults: dict[str, Any] = {}

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Any:
        """FAB's blueprint; the schemas it builds are kept as the base of the custom ones."""
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        self._crm_static = {
            name: copy.copy(getattr(self, name))
            for name in (
                "add_model_schema",
                "edit_model_schema",
                "show_model_schema",
                "list_model_schema",
                "search_columns",
                "order_columns",
            )
        }
        return blueprint

    def refresh_custom_fields(self) -> None:
        """Type the ``custom`` object of every schema by the model's current custom fields,
        and let lists filter (``custom__<name>``) and sort by them; see
        :mod:`crm_core.lowcode.live`."""
        column = custom_column(self.datamodel.obj)
        if column is None:
            return
        static = self._crm_static
        model = self.datamodel.obj.__name__
        defs = live.current(self.datamodel.obj)
        for name in ("add_model_schema", "edit_model_schema", "show_model_schema"):
            setattr(self, name, custom_schemas.with_custom(static[name], column, model, defs))
        self.list_model_schema = custom_schemas.with_custom(
            static["list_model_schema"], column, model, defs
        )
        names = {live.column_name(d.name): d for d in defs}
        self.search_columns = [
            *static["search_columns"],
            *(n for n, d in names.items() if d.kind != "long_text"),
        ]
        self.order_columns = [
            *static["order_columns"],
            *(n for n, d in names.items() if custom_query.sortable(d)),
        ]
        self._filters = self.datamodel.get_filters(self.search_columns, self.search_filters)

    def pre_get(self, data: dict[str, Any]) -> None:
        """A record's sensitive fields, masked for users who may not read them in full."""
        if isinstance(data.get("result"), dict):
            masking.mask_dict(self.datamodel.obj, data["result"])

    def pre_get_list(self, data: dict[str, Any]) -> None:
        """Each listed record's sensitive fields, masked for users who may not read them."""
        for row in data.get("result") or []:
            if isinstance(row, dict):
                masking.mask_dict(self.datamodel.obj, row)

    def _dump(self, schema: Any, item: Any) -> dict[str, Any]:
        return masking.mask_dict(self.datamodel.obj, schema.dump(item, many=False))

    def _get_field_info(self, field: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """FAB's field description for ``_info``, without translating an empty description
        (gettext answers "" with the catalog's header)."""
        info: dict[str, Any] = super()._get_field_info(field, *args, **kwargs)
        described = self.description_columns.get(field.name)
        info["description"] = str(described) if described else ""
        return info

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    @rison(get_list_schema)
    @merge_response_func(ModelRestApi.merge_order_columns, "order_columns")
    @merge_response_func(ModelRestApi.merge_list_label_columns, "label_columns")
    @merge_response_func(ModelRestApi.merge_description_columns, "description_columns")
    @merge_response_func(ModelRestApi.merge_list_columns, "list_columns")
    @merge_response_func(ModelRestApi.merge_list_title, "list_title")
    def get_list(self, **kwargs: Any):  # type: ignore[no-untyped-def]
        """A page of records: FAB's rison ``q`` (columns, filters, order, page), or keyset
        pages with ``cursor``.
        ---
        get:
          description: >-
            A page of records. With `q`, FAB's paging (`page`, `page_size`); with `cursor`
            (empty for the first page, then the `next_cursor` of the previous answer, with the
            same `q` filters and order) pages by the sort key, as fast on page 20,000 as on
            page 1. `count` is exact only when that is cheap (`count_is_estimate`).
          parameters:
          - in: query
            name: q
            content:
              application/json:
                schema:
                  $ref: '#/components/schemas/get_list_schema'
          - in: query
            name: cursor
            schema:
              type: string
          - in: query
            name: page_size
            schema:
              type: integer
          responses:
            200:
              description: Items from Model
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      ids:
                        type: array
                        items:
                          type: string
                      count:
                        type: number
                      count_is_estimate:
                        type: boolean
                      next_cursor:
                        type: string
                        nullable: true
                      result:
                        type: array
                        items:
                          $ref: '#/components/schemas/{{self.__class__.__name__}}.get_list'  # noqa
            400:
              $ref: '#/components/responses/400'
            401:
              $ref: '#/components/responses/401'
            422:
              $ref: '#/components/responses/422'
            500:
              $ref: '#/components/responses/500'
        """
        return self.get_list_headless(**kwargs)

    def get_list_headless(self, **kwargs: Any):  # type: ignore[no-untyped-def]
        """FAB's list with its rison ``q`` (columns, filters, order, page, page_size), plus
        keyset paging: ``?cursor=`` (empty for the first page) with ``page_size`` pages by
        the sort key; every answer carries ``next_cursor`` (``null`` on the last page) and
        ``count_is_estimate`` (``count`` is exact only when that is cheap)."""
        if not isinstance(self.datamodel, CrmInterface):
            return super().get_list_headless(**kwargs)
        response: dict[str, Any] = {}
        args = kwargs.get("rison", {})
        try:
            select_columns, pruned_select_cols = self._handle_columns_args(
                args, self.list_select_columns, self.list_columns
            )
        except InvalidColumnArgsFABException as exc:
            return self.response_400(message=str(exc))
        self.set_response_key_mappings(
            response, self.get_list, args, **{"columns": pruned_select_cols}
        )
        if pruned_select_cols:
            list_model_schema = self.model2schemaconverter.convert(pruned_select_cols)
        else:
            list_model_schema = self.list_model_schema
        try:
            joined_filters = self._handle_filters_args(args)
        except FABException as exc:
            return self.response_400(message=str(exc))
        try:
            order_column, order_direction = self._handle_order_args(args)
        except InvalidOrderByColumnFABException as exc:
            return self.response_400(message=str(exc))
        keyset = "cursor" in request.args
        if keyset and "page" in args:
            return self.response_400(message="Use either page or cursor, not both")
        size_arg = request.args.get("page_size", type=int)  # None when absent or not a number
        page_index, page_size = self._handle_page_args(
            {**args, "page_size": size_arg} if size_arg else args
        )
        try:
            result = self.datamodel.query_page(
                joined_filters,
                order_column,
                order_direction,
                page=page_index,
                page_size=page_size,
                select_columns=select_columns,
                outer_default_load=self.list_outer_default_load,
                cursor=request.args.get("cursor") or None,
                keyset=keyset,
            )
        except CursorError as exc:
            return self.response_400(message=str(exc))
        response["result"] = list_model_schema.dump(result.rows, many=True)
        response["ids"] = self.datamodel.get_keys(result.rows)
        response["count"] = result.count
        response["count_is_estimate"] = result.count_is_estimate
        response["next_cursor"] = result.next_cursor
        self.pre_get_list(response)
        return self.response(200, **response)

    def _warnings(self) -> dict[str, list[str]]:
        """``{"warnings": [...]}`` when the write left some (a possible duplicate)."""
        found = g.pop("crm_warnings", None)
        return {"warnings": found} if found else {}

    def _json_body(self) -> dict[str, Any] | None:
        body = request.get_json(silent=True) if request.is_json else None
        return body if isinstance(body, dict) else None

    def _bad_body(self):  # type: ignore[no-untyped-def]
        return self.response(
            400, message={"body": [str(_l("The request body must be a JSON object"))]}
        )

    def _error(self, exc: CrmError):  # type: ignore[no-untyped-def]
        return self.response(exc.status, message=exc.messages)

    def record_action(  # type: ignore[no-untyped-def]
        self,
        pk: int,
        act: Callable[[Any], None],
        result: Callable[[Any], dict[str, Any]],
        filters: Any = None,
    ):
        """An endpoint's work on one record (claim, withdraw): 404 when the user cannot see it,
        else ``act`` and commit, answering ``result(item)`` or the write's error."""
        item = self.datamodel.get(pk, filters)
        if item is None:
            return self.response_404()
        try:
            act(item)
            session().commit()
        except CrmError as exc:
            session().rollback()
            return self._error(exc)
        return self.response(200, result=result(item))

    def post_headless(self):  # type: ignore[no-untyped-def]
        data = self._json_body()
        if data is None:
            return self._bad_body()
        if errors := out_of_range(self.datamodel.obj, data):
            return self._error(FieldError(errors))
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
            result=self._dump(self.add_model_schema, item),
            id=self.datamodel.get_pk_value(item),
            **self._warnings(),
        )

    def put_headless(self, pk: Any):  # type: ignore[no-untyped-def]
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            return self.response_404()
        data = self._json_body()
        if data is None:
            return self._bad_body()
        if errors := out_of_range(self.datamodel.obj, data):
            return self._error(FieldError(errors))
        expected = data.pop("version", None)
        for field in masking.sensitive_fields(self.datamodel.obj):
            if masking.unchanged_masked(self.datamodel.obj, item, field, data.get(field)):
                del data[field]  # the masked value sent back: keep the stored one
        column = custom_column(self.datamodel.obj)
        stored_custom = dict(getattr(item, column) or {}) if column else {}
        if column and isinstance(data.get(column), dict):
            # Custom fields sent are merged into the stored ones (null removes a value); a
            # sensitive value sent back masked keeps the stored one.
            hidden = masking.sensitive_custom(self.datamodel.obj)
            sent = {
                k: stored_custom[k]
                if k in hidden and masking.keeps_stored(hidden[k], stored_custom.get(k), v)
                else v
                for k, v in data[column].items()
            }
            merged = {**stored_custom, **sent}
            data[column] = {k: v for k, v in merged.items() if v is not None}
        elif column and column not in data:
            data[column] = stored_custom or None  # all of them, those of inactive fields included
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
        return self.response(
            200, result=self._dump(self.edit_model_schema, item), **self._warnings()
        )

    def delete_headless(self, pk: Any):  # type: ignore[no-untyped-def]
        """Business records (with an ``active`` flag) are archived (see CrmInterface.delete)."""
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            return self.response_404()
        try:
            self.pre_delete(item)
            self.datamodel.delete(item)
        except CrmError as exc:
            session().rollback()
            return self._error(exc)
        self.post_delete(item)
        return self.response(200, message="OK")
