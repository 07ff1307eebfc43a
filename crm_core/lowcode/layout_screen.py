"""Layouts on screens: what a record type's screen offers a layout, what makes a layout unusable
on it, and how one request's forms, record page and list follow a layout.

A record type's screen is its first registered :class:`~crm_core.web.crud.CrmModelView` that
takes layouts (``crm_layout = True``, the default; the shared pool's list, for one, does not).
It offers its form fields (add and edit), the fields of its record page, list columns (its
list's, and the record page fields that are not links to other records) and the columns it
sorts by, custom fields included.

Applying a layout never changes the screen, which every request shares: the forms, fieldsets,
columns and order of one request are computed aside (:func:`applied`, kept for the request).
A form field the layout does not place is taken out of the form class of that request, so a
save never writes it and the stored value stays. Required fields (a ``NOT NULL`` column without
default whose field is not optional, a field with a required validator, a custom field marked
required) cannot be left out of a layout; one that becomes required later is shown in the last
section even where the layout hides it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, has_request_context
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import inspect

from . import layouts
from . import query as custom_query
from .fields import FieldDefinition, custom_column
from .layouts import DIRECTIONS, Design, Section
from .live import PREFIX, Label, column_name, current

OTHER_FIELDS = _l("Other fields")
_G_KEY = "_crm_layout_applied"


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Offer:
    """What one record type's screen lets a layout place."""

    model: str
    form: tuple[str, ...]
    show: tuple[str, ...]
    columns: tuple[str, ...]
    sortable: frozenset[str]
    required: frozenset[str]
    labels: dict[str, Any] = field(compare=False)

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field a section may hold: the form's, then those only the record page has."""
        return _unique((*self.form, *self.show))

    def label(self, name: str) -> str:
        return str(self.labels.get(name) or name)


# --------------------------------------------------------------------------- screens


def layout_screens() -> dict[str, Any]:
    """The screen of every record type that takes layouts, by model name."""
    found: dict[str, Any] = {}
    for view in current_app.appbuilder.baseviews:  # type: ignore[attr-defined]
        if not getattr(view, "crm_layout", False) or not hasattr(view, "_crm_static"):
            continue
        model = view.datamodel.obj
        if hasattr(model, "__crm_label__"):
            found.setdefault(model.__name__, view)
    return found


def layout_models() -> list[tuple[str, str]]:
    """``(model, label)`` of every record type that takes layouts, by label."""
    pairs = [
        (name, str(view.datamodel.obj.__crm_label__)) for name, view in layout_screens().items()
    ]
    return sorted(pairs, key=lambda pair: pair[1])


def _unbound_fields(form_class: type) -> list[tuple[str, Any]]:
    """The fields of a WTForms form class, unbound (no request needed)."""
    return [
        (name, getattr(form_class, name))
        for name in dir(form_class)
        if not name.startswith("_") and hasattr(getattr(form_class, name), "_formfield")
    ]


def _flags(unbound: Any) -> dict[str, Any]:
    validators = unbound.kwargs.get("validators")
    if validators is None and len(unbound.args) > 1:
        validators = unbound.args[1]
    flags: dict[str, Any] = {}
    for validator in validators or []:
        flags.update(getattr(validator, "field_flags", None) or {})
    return flags


def _not_null_without_default(model: type, name: str) -> bool:
    mapper: Any = inspect(model)
    if name in mapper.relationships:
        rel = mapper.relationships[name]
        if rel.direction.name != "MANYTOONE":
            return False
        columns = list(rel.local_columns)
    elif name in mapper.columns:
        columns = [mapper.columns[name]]
    else:
        return False
    return any(
        not c.nullable and c.default is None and c.server_default is None and not c.primary_key
        for c in columns
    )


def required_fields(view: Any, defs: list[FieldDefinition]) -> frozenset[str]:
    """The fields of ``view``'s forms a record cannot be saved without."""
    model = view.datamodel.obj
    found: set[str] = set()
    for kind in ("add_form", "edit_form"):
        for name, unbound in _unbound_fields(view._crm_static[kind]):
            flags = _flags(unbound)
            if flags.get("required") or (
                not flags.get("optional") and _not_null_without_default(model, name)
            ):
                found.add(name)
    found |= {column_name(d.name) for d in defs if d.required and d.kind != "bool"}
    return frozenset(found)


def offer(view: Any, defs: list[FieldDefinition] | None = None) -> Offer:
    """What ``view`` offers a layout, with the custom fields ``defs`` (by default the live
    ones; a configuration bundle passes those it is about to write)."""
    model = view.datamodel.obj
    if defs is None:
        defs = current(model)
    static = view._crm_static
    column = custom_column(model)
    custom = [column_name(d.name) for d in defs] if column else []

    def own(names: Iterable[str]) -> list[str]:
        return [n for n in names if n != column and not n.startswith(PREFIX)]

    # A link to another record is a list column only where the screen lists it already: a
    # list loads its links in the same query, which is the screen's decision (see ConsentView).
    is_link = view.datamodel.is_relation
    listable = [
        *own(static["list_columns"]),
        *(c for c in own(static["show_columns"]) if not is_link(c)),
    ]
    labels = {**static["label_columns"], **{column_name(d.name): Label(d) for d in defs}}
    return Offer(
        model=model.__name__,
        form=_unique((*own(static["add_columns"]), *own(static["edit_columns"]), *custom)),
        show=_unique((*own(static["show_columns"]), *custom)),
        columns=_unique((*listable, *custom)),
        sortable=frozenset(
            [
                *own(static["order_columns"]),
                *(column_name(d.name) for d in defs if custom_query.sortable(d)),
            ]
        ),
        required=required_fields(view, defs),
        labels=labels,
    )


def live_offer(view: Any) -> Offer:
    """:func:`offer` with the live custom fields, built again only when they change."""
    key = (view.add_form, view.edit_form)
    cached = view.__dict__.get("_crm_layout_offer")
    if cached is not None and cached[0] == key:
        return cached[1]  # type: ignore[no-any-return]
    found = offer(view)
    view._crm_layout_offer = (key, found)
    return found


# --------------------------------------------------------------------------- checks


def problems(
    screen: Offer,
    sections: list[Section] | tuple[Section, ...],
    list_columns: list[str] | tuple[str, ...],
    order_column: str | None,
    order_direction: str | None,
    hidden: Iterable[str] = (),
) -> list[str]:
    """What makes a layout unusable on ``screen``, in the user's language (empty: usable)."""
    out: list[str] = []
    allowed = set(screen.fields)
    seen: set[str] = set()
    for section in sections:
        if not section.title_zh.strip():
            out.append(str(_l("Every section needs a Chinese title.")))
        if not section.fields:
            out.append(str(_l("The section %(title)s has no fields.", title=section.title_zh)))
        for name in section.fields:
            if name not in allowed:
                out.append(str(_l("There is no field %(field)s.", field=name)))
            elif name in seen:
                out.append(
                    str(_l("%(field)s is in more than one section.", field=screen.label(name)))
                )
            seen.add(name)
    out += [
        str(_l("There is no field %(field)s.", field=name))
        for name in hidden
        if name not in allowed
    ]
    if sections:
        for name in screen.form:
            if name in screen.required and name not in seen:
                out.append(
                    str(
                        _l(
                            "%(field)s is required: put it in a section.",
                            field=screen.label(name),
                        )
                    )
                )
    for name in list_columns:
        if name not in screen.columns:
            out.append(str(_l("%(field)s cannot be a column of the list.", field=name)))
    if len(set(list_columns)) != len(list_columns):
        out.append(str(_l("A column is in the list twice.")))
    if order_column and order_column not in screen.sortable:
        out.append(str(_l("The list cannot be sorted by %(field)s.", field=order_column)))
    if order_column and order_direction not in DIRECTIONS:
        out.append(str(_l("The order is ascending (asc) or descending (desc).")))
    return list(dict.fromkeys(out))  # each problem once


def hidden_fields(screen: Offer, sections: Iterable[Section]) -> list[str]:
    """The fields a layout leaves out on purpose: those ``screen`` offers and no section
    holds."""
    placed = {f for s in sections for f in s.fields}
    return [f for f in screen.fields if f not in placed]


# --------------------------------------------------------------------------- one request


@dataclass(frozen=True)
class Applied:
    """One request's forms, record page and list of a screen under a layout. ``None`` in a
    fieldsets attribute: the screen's own."""

    add_fieldsets: list[tuple[str, dict[str, list[str]]]] | None
    edit_fieldsets: list[tuple[str, dict[str, list[str]]]] | None
    show_fieldsets: list[tuple[str, dict[str, list[str]]]] | None
    list_columns: list[str]
    base_order: tuple[str, str] | None


def fieldsets(
    design: Design, columns: Iterable[str], keep: frozenset[str] = frozenset()
) -> list[tuple[str, dict[str, list[str]]]]:
    """``columns`` grouped by ``design``'s sections: fields a section names and ``columns``
    has, in the section's order; then, in a last section, the columns neither placed nor
    hidden, and hidden ones in ``keep`` (required fields)."""
    available = list(columns)
    out: list[tuple[str, dict[str, list[str]]]] = []
    for section in design.sections:
        names = [f for f in section.fields if f in available]
        if names:
            out.append((section.title, {"fields": names}))
    placed = {f for _title, spec in out for f in spec["fields"]}
    rest = [c for c in available if c not in placed and (c not in design.hidden or c in keep)]
    if rest:
        out.append((str(OTHER_FIELDS), {"fields": rest}))
    return out


def columns_of(sets: list[tuple[str, dict[str, list[str]]]]) -> list[str]:
    return [f for _title, spec in sets for f in spec["fields"]]


def applied(view: Any) -> Applied | None:
    """How ``view`` looks for this request's user (``None``: as configured), once per
    request."""
    if not has_request_context() or not getattr(view, "crm_layout", False):
        return None
    if not hasattr(view.datamodel.obj, "__crm_label__"):  # not a record type of its own
        return None
    cache: dict[int, Applied | None] = g.setdefault(_G_KEY, {})
    if id(view) in cache:
        return cache[id(view)]
    design = layouts.for_request(view.datamodel.obj.__name__)
    result = None if design is None else _apply(view, design)
    cache[id(view)] = result
    return result


def _apply(view: Any, design: Design) -> Applied:
    screen = live_offer(view)
    add = edit = show = None
    if design.sections:
        add = fieldsets(design, view.add_columns, screen.required)
        edit = fieldsets(design, view.edit_columns, screen.required)
        show = fieldsets(design, view.show_columns)
    wanted = [c for c in design.list_columns if c in screen.columns]
    order = view.base_order
    if design.order and design.order[0] in view.order_columns:
        order = design.order
    return Applied(add, edit, show, wanted or list(view.list_columns), order)


def form_without(view: Any, base: type, keep: Iterable[str]) -> type:
    """``base`` (a form class of ``view``) without the fields not in ``keep``: WTForms leaves
    out a field a subclass sets to ``None``. Made once per form and set of fields."""
    kept = set(keep) | {"csrf_token"}
    removed = frozenset(name for name, _f in _unbound_fields(base) if name not in kept)
    if not removed:
        return base
    made: dict[tuple[type, frozenset[str]], type] = view.__dict__.setdefault(
        "_crm_layout_forms", {}
    )
    key = (base, removed)
    if key not in made:
        made[key] = type(base.__name__, (base,), dict.fromkeys(removed))
    return made[key]


# --------------------------------------------------------------------------- record pages


def record_sections(model: str, item: Any) -> list[tuple[str, list[tuple[str, Any]]]] | None:
    """``[(title, [(label, shown value)])]`` of a record page of its own (the customer 360°
    page) under this request's layout, or ``None`` when no layout with sections applies.
    Values read as on the screen's record page: labels, masking (with the "Show" link for
    users who may reveal), picklist labels."""
    from ..security import masking, reveal

    view = layout_screens().get(model)
    if view is None:
        return None
    shown = applied(view)
    if shown is None or not shown.show_fieldsets:
        return None
    sensitive = masking.sensitive_fields(type(item))
    out = []
    for title, spec in shown.show_fieldsets:
        names = spec["fields"]
        values = view.datamodel.get_values_item(item, names)
        rows = []
        for name, value in zip(names, values, strict=True):
            label = str(view.label_columns.get(name) or name)
            if name in sensitive:
                rows.append((label, reveal.sensitive_html(item, name)))
                continue
            formatter = view.formatters_columns.get(name)
            rows.append((label, _shown(formatter(value) if formatter else value)))
        out.append((title, rows))
    return out


def _shown(value: Any) -> Any:
    from flask_babel import gettext as _

    if value is None:
        return ""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, Markup | str):
        return value
    if isinstance(value, list | tuple | set):
        return "、".join(str(v) for v in value)
    return value
