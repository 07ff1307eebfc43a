"""Lists exported as CSV or Excel: the rows a list screen selects for the user, every one of
them, in the list's order, with the values as the user reads them.

:func:`list_query` reads a list screen's filters (``_flt_*`` arguments) and order (``_oc_*`` /
``_od_*``) from the request exactly as the screen does, joined with the screen's base filters;
every query runs through the ORM session, so the user's record rules apply as on the list.
:func:`rows` walks the matches in batches of ``CRM_EXPORT_BATCH_SIZE`` (1,000) with the list
machinery (:func:`crm_core.web.listing.fetch_page`): keyset pages ("after this sort key") when
the sort column can be sought, numbered pages (read from the index first) otherwise. No batch
holds more than its own rows; a list of a million rows streams in constant memory.

Columns (:func:`columns`) are those of the user's list, then the other fields of the record
page (custom fields included), both as the user's layout arranges them, headed by their labels
in the user's language. Values are those the screens show, in a form an import reads back:
picklist and choice labels, names of owners and linked records, ``是``/``否`` (Yes/No), dates as
``2026-11-26`` and times as ``2026-11-26 09:30:00``, decimals plain, several values joined by
``、``, sensitive fields masked for users who read them masked.

A text that a spreadsheet would run as a formula (starting with ``=``, ``@``, or ``+``/``-``
followed by more than a number) is written with a leading apostrophe in CSV, and as text in
XLSX, so opening an export never runs what someone typed into a record.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from flask import current_app, has_app_context
from flask_appbuilder.security.sqla.models import User
from flask_appbuilder.urltools import get_filter_args, get_order_args
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import func
from sqlalchemy.orm import selectinload

from ..db import session
from ..lowcode import layout_screen, live
from ..org.display import display_user
from ..security import audit
from ..web.listing import fetch_page, seekable

FORMATS = ("csv", "xlsx")
#: The audit operation of an export (one entry per export, record id 0: no one record).
AUDIT_OPERATION = "exportlist"
#: The setting (Settings screen) with the most rows one export may hold.
MAX_ROWS_SETTING = "data.export_max_rows"
DEFAULT_MAX_ROWS = 100_000
#: App config keys and their defaults.
DEFAULTS: dict[str, Any] = {"CRM_EXPORT_BATCH_SIZE": 1_000}
#: How several values of one field are joined in one cell (tags, multiple choices).
JOINER = "、"
BOM = "\ufeff"
MIME_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_NUMBER_KINDS = ("integer", "decimal", "money")
_PLAIN_NUMBER = re.compile(r"^[+-]?[\d\s().]*$")
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def setting(key: str) -> Any:
    """An export setting from the app config, or its default."""
    if has_app_context():
        return current_app.config.get(key, DEFAULTS[key])
    return DEFAULTS[key]


def max_rows() -> int:
    """The most rows one export may hold (the ``data.export_max_rows`` setting)."""
    from ..settings.store import get_setting

    try:
        return max(1, int(get_setting(MAX_ROWS_SETTING)))
    except (KeyError, TypeError, ValueError):
        return DEFAULT_MAX_ROWS


# --------------------------------------------------------------------------- the query


@dataclass
class ListQuery:
    """What one list screen selects for this request: its filters joined with the screen's
    base filters, and its order."""

    view: Any
    filters: Any
    order_column: str
    order_direction: str
    #: The filters of the request alone (what the user chose), without the base filters.
    chosen: Any = None

    @property
    def interface(self) -> Any:
        return self.view.datamodel


def list_query(view: Any) -> ListQuery:
    """The filters and order of ``view``'s list as this request's arguments give them (the
    screen's own arguments: ``_flt_<n>_<column>``, ``_oc_<View>``, ``_od_<View>``); without
    an order, the order of the user's layout or the screen's default."""
    filters = view.datamodel.get_filters(view.search_columns)
    get_filter_args(filters)
    order_column, order_direction = get_order_args().get(view.__class__.__name__, ("", ""))
    if order_column not in (view.order_columns or []):
        order_column, order_direction = "", ""
    if not order_column:
        shown = layout_screen.applied(view)
        default = shown.base_order if shown is not None else view.base_order
        if default:
            order_column, order_direction = default
    joined = filters.get_joined_filters(view._base_filters)
    return ListQuery(view, joined, order_column or "", order_direction or "", filters)


def count_upto(query: ListQuery, cap: int) -> int:
    """How many rows ``query`` selects, counted no further than ``cap + 1`` (an index range
    stops there, however big the table)."""
    iface = query.interface
    filtered = iface._apply_inner_all(
        iface.session.query(iface.obj), query.filters, aliases_mapping={}
    )
    capped = filtered.with_entities(iface.get_pk()).order_by(None).limit(cap + 1).subquery()
    return int(iface.session.query(func.count()).select_from(capped).scalar() or 0)


def describe_filters(query: ListQuery) -> list[str]:
    """The list's filters as people read them (``城市 等于 上海``), for the audit trail."""
    labels = query.view.label_columns
    out = []
    chosen = query.chosen if query.chosen is not None else query.filters
    for flt, value in zip(chosen.filters, chosen.values, strict=True):
        values = value if isinstance(value, list) else [value]
        shown = ", ".join(str(v) for v in values)
        label = labels.get(flt.column_name) or flt.column_name
        out.append(f"{label} {flt.name} {shown}")
    return out


def filter_labels(query: ListQuery) -> list[str]:
    """The labels of the fields the list is filtered by, each once."""
    labels = query.view.label_columns
    chosen = query.chosen if query.chosen is not None else query.filters
    names = dict.fromkeys(flt.column_name for flt in chosen.filters)
    return [str(labels.get(n) or n) for n in names]


def record_export(query: ListQuery, fmt: str, count: int) -> audit.AuditLog:
    """The audit entry of one export: who (the current user, channel and IP), which record
    type and screen, its filters and order, the format and how many rows it holds. The
    caller commits."""
    model = query.interface.obj
    name = getattr(model, "__crm_event__", None) or model.__name__.lower()
    order = f"{query.order_column} {query.order_direction}".strip()
    changes: dict[str, list[Any]] = {
        "screen": [None, query.view.__class__.__name__],
        "format": [None, fmt],
        "rows": [None, count],
        "filters": [None, "; ".join(describe_filters(query)) or None],
        "order": [None, order or None],
    }
    return audit.write_entry(session(), name, 0, AUDIT_OPERATION, changes)


# --------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    """One column of an export: the screen's column name and its heading."""

    name: str
    header: str
    #: A custom number field: written as a number in XLSX.
    numeric: bool = False


def column_names(view: Any) -> list[str]:
    """The list's columns, then the record page's other fields, as the user's layout shows
    them."""
    shown = layout_screen.applied(view)
    listed = list(shown.list_columns if shown is not None else view.list_columns)
    sets = shown.show_fieldsets if shown is not None else None
    page = layout_screen.columns_of(sets) if sets else list(view.show_columns)
    return list(dict.fromkeys([*listed, *page]))


def columns(view: Any) -> list[Column]:
    """The columns of ``view``'s export, headed in the user's language."""
    out = []
    for name in column_names(view):
        defn = live.field_of(view.datamodel.obj, name)
        header = str(view.label_columns.get(name) or name)
        numeric = defn is not None and defn.kind in _NUMBER_KINDS and not defn.sensitive
        out.append(Column(name, header, numeric))
    return out


# --------------------------------------------------------------------------- values


def plain(value: Any) -> Any:
    """A shown value as one cell: text, or a number; ``""`` for nothing."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value.striptags()
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, int | float | Decimal):  # a number in Excel, plain in CSV
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, User):
        return display_user(value)
    if isinstance(value, list | tuple | set | frozenset):  # tags, several choices
        return JOINER.join(str(plain(v)) for v in value)
    return str(value)  # text, translated labels, linked records by their names


def cell(view: Any, column: Column, raw: Any) -> Any:
    """``raw`` (a record's value of ``column``) as the screen shows it, for a cell."""
    formatter = view.formatters_columns.get(column.name)
    value = plain(formatter(raw) if formatter else raw)
    if column.numeric and isinstance(value, str) and value:
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


def _many_to_one(view: Any, names: list[str]) -> tuple[str, ...]:
    iface = view.datamodel
    return tuple(n for n in names if iface.is_relation_many_to_one(n))


def _to_many(view: Any, names: list[str]) -> list[str]:
    iface = view.datamodel
    return [
        n for n in names if iface.is_relation_one_to_many(n) or iface.is_relation_many_to_many(n)
    ]


def _load_links(query: ListQuery, found: list[Any], names: list[str]) -> None:
    """Load the to-many links (tags) of a batch in one query each, not one per row."""
    if not names or not found:
        return
    iface = query.interface
    ids = [iface.get_pk_value(item) for item in found]
    options = [selectinload(getattr(iface.obj, n)) for n in names]
    iface.session.query(iface.obj).filter(iface.get_pk().in_(ids)).options(*options).all()


def _batches(query: ListQuery, eager: tuple[str, ...]) -> Iterator[list[Any]]:
    """The records ``query`` selects, a batch at a time, in the list's order."""
    iface = query.interface
    size = int(setting("CRM_EXPORT_BATCH_SIZE"))
    column, direction = query.order_column, query.order_direction
    if not column:
        column, direction = str(iface.get_pk_name()), "asc"
    if seekable(iface, column):
        cursor: str | None = None
        while True:
            page = fetch_page(
                iface,
                query.filters,
                column,
                direction,
                page_size=size,
                cursor=cursor,
                keyset=True,
                eager=eager,
            )
            if page.rows:
                yield page.rows
            if not page.next_cursor:
                return
            cursor = page.next_cursor
    number = 0
    while True:  # a column that may be NULL or a custom field: numbered pages
        page = fetch_page(
            iface, query.filters, column, direction, page=number, page_size=size, eager=eager
        )
        if page.rows:
            yield page.rows
        if len(page.rows) < size:
            return
        number += 1


def rows(query: ListQuery, cols: list[Column], limit: int | None = None) -> Iterator[list[Any]]:
    """The cells of every record ``query`` selects (at most ``limit``), row by row."""
    view = query.view
    names = [c.name for c in cols]
    eager, links = _many_to_one(view, names), _to_many(view, names)
    written = 0
    for batch in _batches(query, eager):
        _load_links(query, batch, links)
        for item in batch:
            if limit is not None and written >= limit:
                return
            values = query.interface.get_values_item(item, names)
            yield [cell(view, c, v) for c, v in zip(cols, values, strict=True)]
            written += 1


class Counted:
    """An iterable of rows that counts the rows taken from it."""

    def __init__(self, rows: Iterable[list[Any]]) -> None:
        self._rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[list[Any]]:
        for row in self._rows:
            self.count += 1
            yield row


# --------------------------------------------------------------------------- writers


def safe_text(value: str) -> str:
    """``value``, with a leading apostrophe when a spreadsheet would run it as a formula."""
    if not value:
        return value
    first = value[0]
    if first in "=@\t\r" or (first in "+-" and not _PLAIN_NUMBER.match(value)):
        return "'" + value
    return value


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, Decimal):
        return format(value, "f")  # 12500.00, never 1.25E+4
    return value


def csv_chunks(
    header: list[str], body: Iterable[list[Any]], rows_per_chunk: int = 500
) -> Iterator[bytes]:
    """The CSV file, UTF-8 with a byte order mark (what Excel needs to read Chinese), in
    chunks of ``rows_per_chunk`` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_text(h) for h in header])
    yield (BOM + buffer.getvalue()).encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    pending = 0
    for row in body:
        writer.writerow([_csv_cell(v) for v in row])
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if pending:
        yield buffer.getvalue().encode("utf-8")


def write_xlsx(target: IO[bytes], title: str, header: list[str], body: Iterable[list[Any]]) -> None:
    """The XLSX workbook into ``target``: one sheet named ``title``, a bold header row that
    stays in view while scrolling, texts always as texts. Written row by row (openpyxl's
    write-only mode), so memory does not grow with the number of rows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet(_sheet_title(title))
    sheet.freeze_panes = "A2"
    for index, text in enumerate(header, start=1):
        width = min(60, max(10, 2 * len(text) + 2))
        sheet.column_dimensions[get_column_letter(index)].width = width
    bold = Font(bold=True)
    heading = []
    for text in header:
        cell_ = WriteOnlyCell(sheet, value=_ILLEGAL_XML.sub("", text))
        cell_.font = bold
        cell_.data_type = "s"
        heading.append(cell_)
    sheet.append(heading)
    for row in body:
        out: list[Any] = []
        for value in row:
            if value == "":
                out.append(None)  # no cell at all
            elif isinstance(value, str) and value.startswith("="):
                text_cell = WriteOnlyCell(sheet, value=_ILLEGAL_XML.sub("", value))
                text_cell.data_type = "s"  # stays a text, never a formula
                out.append(text_cell)
            elif isinstance(value, str):
                out.append(_ILLEGAL_XML.sub("", value))
            else:
                out.append(value)
        sheet.append(out)
    book.save(target)


def _sheet_title(title: str) -> str:
    cleaned = re.sub(r"[\\/*?:\[\]]", "", title).strip()
    return (cleaned or "Export")[:31]


def filenames(view: Any, fmt: str, now: datetime) -> tuple[str, str]:
    """The file's name in the user's language (``客户_20261126_0930.xlsx``) and in ASCII
    (``customer_20261126_0930.xlsx``) for clients that cannot read the first."""
    model = view.datamodel.obj
    label = str(getattr(model, "__crm_label__", None) or view.list_title or model.__name__)
    label = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "", label).strip() or model.__name__
    stamp = now.strftime("%Y%m%d_%H%M")
    return f"{label}_{stamp}.{fmt}", f"{model.__name__.lower()}_{stamp}.{fmt}"
