"""What the layout designer page exchanges with the CRM: the data it starts from, and the
layout it sends back (read and checked for shape here; for meaning by
:func:`crm_core.lowcode.layout_screen.problems`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from . import layout_screen
from .layouts import Layout, Section, design_of

#: Titles (Chinese, English) of the section a new layout starts with, and of the section the
#: designer adds for fields offered since the layout was saved.
DEFAULT_SECTION = ("详细信息", "Details")
NEW_FIELDS_SECTION = ("其他字段", "Other fields")

#: The designer's words, in the user's language (the script has none of its own).
TEXTS = {
    "title_zh": _l("Title (Chinese)"),
    "title_en": _l("Title (English)"),
    "move_up": _l("Move up"),
    "move_down": _l("Move down"),
    "remove": _l("Remove"),
    "remove_section": _l("Remove section"),
    "add_to": _l("Add to"),
    "add_column": _l("Add to the list"),
    "drop_here": _l("Drop here"),
    "no_sections": _l("No sections: the forms and the record page stay as the screen has them."),
    "required": _l("Required"),
    "section": _l("Section"),
    "saving": _l("Saving…"),
    "failed": _l("The layout could not be saved."),
}


def designer_data(layout: Layout, screen: Any, save_url: str) -> dict[str, Any]:
    """Everything the designer page needs, as JSON-ready data: the screen's fields and
    columns with their labels, and the layout as stored (a new one starts as the screen
    looks now: one section with every field, the screen's list and order)."""
    offer = layout_screen.live_offer(screen)
    design = design_of(layout)
    sections = [
        {"title_zh": s.title_zh, "title_en": s.title_en or "", "fields": list(s.fields)}
        for s in design.sections
    ]
    if not sections:
        zh, en = DEFAULT_SECTION
        sections = [{"title_zh": zh, "title_en": en, "fields": list(offer.fields)}]
    else:  # fields offered since the layout was saved, neither placed nor hidden
        placed = design.placed | design.hidden
        new = [f for f in offer.fields if f not in placed]
        if new:
            zh, en = NEW_FIELDS_SECTION
            sections.append({"title_zh": zh, "title_en": en, "fields": new})
    for section in sections:
        section["fields"] = [f for f in section["fields"] if f in offer.fields]
    columns = list(design.list_columns) or list(screen.list_columns)
    order = design.order or screen.base_order or ("", "asc")
    return {
        "save_url": save_url,
        "fields": [
            {
                "name": name,
                "label": offer.label(name),
                "required": name in offer.required and name in offer.form,
            }
            for name in offer.fields
        ],
        "columns": [
            {"name": name, "label": offer.label(name), "sortable": name in offer.sortable}
            for name in offer.columns
        ],
        "sections": sections,
        "list_columns": [c for c in columns if c in offer.columns],
        "order_column": order[0] if order[0] in offer.sortable else "",
        "order_direction": order[1] or "asc",
        "texts": {key: str(text) for key, text in TEXTS.items()},
    }


@dataclass(frozen=True)
class Posted:
    """A layout as the designer sent it."""

    sections: tuple[Section, ...]
    list_columns: tuple[str, ...]
    order_column: str
    order_direction: str


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(str(_l("The layout is not in the designer's form.")))
    return tuple(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(str(_l("The layout is not in the designer's form.")))
    return value.strip()


def read_design(body: Any) -> Posted:
    """The layout of a designer's request body; ``ValueError`` (in the user's language) when
    it does not have the designer's shape."""
    if not isinstance(body, dict) or not isinstance(body.get("sections", []), list):
        raise ValueError(str(_l("The layout is not in the designer's form.")))
    sections = []
    for item in body.get("sections") or []:
        if not isinstance(item, dict):
            raise ValueError(str(_l("The layout is not in the designer's form.")))
        title_zh, title_en = _text(item.get("title_zh")), _text(item.get("title_en"))
        if len(title_zh) > 100 or len(title_en) > 100:
            raise ValueError(str(_l("A section title has at most 100 characters.")))
        sections.append(Section(title_zh, title_en or None, _names(item.get("fields") or [])))
    return Posted(
        sections=tuple(sections),
        list_columns=_names(body.get("list_columns") or []),
        order_column=_text(body.get("order_column")),
        order_direction=_text(body.get("order_direction")) or "asc",
    )
