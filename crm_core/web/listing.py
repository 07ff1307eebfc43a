"""List pages that stay fast at millions of rows: keyset paging and deep pages.

Flask-AppBuilder pages every list with ``OFFSET`` and counts it with ``count(*)``; at a million
rows page 20,000 takes seconds. :class:`ListingInterface` is the data interface every
:class:`~crm_core.web.crud.CrmInterface` builds on, for screens and REST lists of core and
plugin models alike. It keeps FAB's filters and ordering and changes how rows are found:

- **Keyset ("seek") paging.** A cursor carries the last row's sort key and id; the next page
  is ``WHERE (sort_col, id) > (:key, :id) ORDER BY sort_col, id LIMIT n``, one index range
  whatever the depth. Sort columns that may be NULL cannot be sought portably (NULLs order
  differently per backend), so their cursors carry a position instead.
- **Deep OFFSET pages** (FAB's ``page`` argument) seek from the boundary of a nearby page
  shown a moment ago (:mod:`crm_core.web.anchors`: "next page" costs what a first page costs),
  or from a stored anchor of a big list (:mod:`crm_core.web.anchor_store`: a jump to page
  20,000 skips fewer than a thousand rows); failing both they use a *deferred join*: first
  the ids of the page, read from a covering index (``SELECT id ... ORDER BY name, id LIMIT 25
  OFFSET 500000``, no table rows touched), then the 25 rows by id.
- **Counts** come from :func:`crm_core.web.counts.cheap_count` (exact when cheap, else an
  estimate flagged ``count_is_estimate``).
- **Less framework work per request**: filter sets are built lazily, inner filters reuse the
  filter objects, and one ``load_only`` replaces FAB's option per column.

Every row query goes through the ORM session, so session-wide record rules apply.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.utils.base import get_column_root_relation, is_column_dotted
from sqlalchemy import asc, desc, func, select, tuple_
from sqlalchemy.orm import Load, Query, joinedload

from ..security import rules
from . import anchor_store, anchors
from .counts import cheap_count, filter_parts
from .search import CrmFilterConverter, CrmFilters, PrefixNormaliser

#: Settings (app config keys) and their defaults.
DEFAULTS: dict[str, Any] = {
    # OFFSET pages from this offset on use the deferred join ("offset" turns it off).
    "CRM_LIST_DEFERRED_JOIN_OFFSET": 1_000,
    "CRM_LIST_DEEP_PAGES": "deferred",
}


def setting(key: str) -> Any:
    """A listing setting from the app config, or its default."""
    if has_app_context():
        return current_app.config.get(key, DEFAULTS[key])
    return DEFAULTS[key]


class CursorError(ValueError):
    """A ``cursor`` that is malformed or belongs to another sort order (answered with 400)."""


@dataclass(frozen=True)
class Position:
    """Where a keyset page starts: after ``key`` (sort value, id) or at ``offset``."""

    column: str
    direction: str
    key: tuple[Any, Any] | None = None
    offset: int | None = None


@dataclass
class ListPage:
    """One page of a list: the rows, the (maybe estimated) count and the next page's cursor."""

    rows: list[Any]
    count: int
    count_is_estimate: bool = False
    next_cursor: str | None = None


# --------------------------------------------------------------------------- cursors


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def encode_cursor(position: Position) -> str:
    """The opaque, URL-safe text of a position (base64 of compact JSON, unpadded)."""
    data: dict[str, Any] = {"c": position.column, "d": position.direction}
    if position.key is not None:
        data["k"] = [_jsonable(position.key[0]), _jsonable(position.key[1])]
    else:
        data["o"] = position.offset or 0
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _typed(interface: Any, column: str, value: Any) -> Any:
    """A cursor's JSON value back in the column's Python type."""
    if value is None:
        return None
    if interface.is_datetime(column):
        return datetime.fromisoformat(value)
    if interface.is_date(column):
        return date.fromisoformat(value)
    if interface.is_integer(column):
        return int(value)
    if interface.is_float(column):
        return float(value)
    if interface.is_numeric(column):
        return Decimal(str(value))
    if interface.is_boolean(column):
        return bool(value)
    if not isinstance(value, str):
        raise ValueError("text expected")
    return value


def decode_cursor(interface: Any, cursor: str) -> Position:
    """The position in a cursor made by :func:`encode_cursor`; :class:`CursorError` if bad."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        column, direction = data["c"], data["d"]
        if direction not in ("asc", "desc") or not isinstance(column, str):
            raise ValueError("bad order")
        if column not in interface.list_columns:
            raise ValueError("bad column")
        if "k" in data:
            value, pk = data["k"]
            pk_name = interface.get_pk_name()
            key = (_typed(interface, column, value), _typed(interface, pk_name, pk))
            return Position(column, direction, key=key)
        offset = int(data["o"])
        if offset < 0:
            raise ValueError("negative offset")
        return Position(column, direction, offset=offset)
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError) as exc:
        raise CursorError("Not a valid cursor") from exc


# --------------------------------------------------------------------------- rows


def seekable(interface: Any, column: str) -> bool:
    """Whether lists sorted by ``column`` can be paged by key: a plain column of the model
    that is the primary key or NOT NULL."""
    prop = interface.list_columns.get(column)
    if prop is None or interface.is_pk_composite():
        return False
    return bool(prop.primary_key or not prop.nullable)


def keyset_order(interface: Any, order_column: str, order_direction: str) -> tuple[str, str]:
    """The order a keyset list uses: the requested one, or the primary key ascending.
    The direction is normalised as FAB applies it (anything but "asc" sorts descending)."""
    if not order_column:
        return str(interface.get_pk_name()), "asc"
    return order_column, "asc" if order_direction == "asc" else "desc"


@dataclass
class _List:
    """One list request: FAB's query parts, and how rows are loaded."""

    interface: Any
    filters: Any
    order_column: str
    order_direction: str
    select_columns: list[str] | None
    outer_default_load: bool
    eager: tuple[str, ...]

    @property
    def direction(self) -> str:
        return "asc" if self.order_direction == "asc" else "desc"

    def inner(self, aliases: dict[str, Any], filtered: bool = True) -> Query[Any]:
        """FAB's filtered, ordered list query (``_apply_inner_all``) without paging."""
        return self.interface._apply_inner_all(  # type: ignore[no-any-return]
            self.interface.session.query(self.interface.obj),
            self.filters if filtered else None,
            self.order_column,
            self.order_direction,
            None,
            None,
            self.select_columns,
            aliases_mapping=aliases,
        )

    def rows(self, inner: Query[Any], aliases: dict[str, Any]) -> list[Any]:
        """The model objects of a paged inner query, with FAB's outer join for to-many
        select columns and the ``eager`` relations."""
        iface, query = self.interface, inner
        if self.select_columns and iface.exists_col_to_many(self.select_columns):
            columns = self.select_columns + ([self.order_column] if self.order_column else [])
            outer = iface.get_outer_query_from_inner_query(iface.session.query(iface.obj), inner)
            outer = iface.apply_outer_select_joins(
                outer, columns, outer_default_load=self.outer_default_load, aliases_mapping=aliases
            )
            query = iface.apply_order_by(
                outer, self.order_column, self.order_direction, aliases_mapping=aliases
            )
        for name in self.eager:
            query = query.options(joinedload(getattr(iface.obj, name)))
        found = query.all()
        name = iface.obj.__name__
        if found and not hasattr(found[0], name):
            return found
        return [getattr(row, name) for row in found]

    def key(self, row: Any) -> tuple[Any, Any]:
        """A row's sort key: the order column's value and the primary key."""
        return getattr(row, self.order_column), self.interface.get_pk_value(row)

    def seek(
        self, key: tuple[Any, Any], limit: int | None, inclusive: bool, skip: int = 0
    ) -> list[Any]:
        """Rows after (or from, when ``inclusive``) ``key`` in the sort order."""
        column = getattr(self.interface.obj, self.order_column)
        left, right = column, key[0]
        if not self.interface.is_pk(self.order_column):
            left, right = tuple_(column, self.interface.get_pk()), tuple_(*key)
        if self.direction == "asc":
            condition = left >= right if inclusive else left > right
        else:
            condition = left <= right if inclusive else left < right
        aliases: dict[str, Any] = {}
        inner = self.inner(aliases).filter(condition)
        if skip:
            inner = inner.offset(skip)
        return self.rows(inner if limit is None else inner.limit(limit), aliases)

    def at_offset(self, offset: int, limit: int | None) -> list[Any]:
        """Rows ``offset`` .. ``offset + limit``; deep offsets read the page's ids first."""
        aliases: dict[str, Any] = {}
        deferred = (
            limit is not None
            and setting("CRM_LIST_DEEP_PAGES") == "deferred"
            and offset >= int(setting("CRM_LIST_DEFERRED_JOIN_OFFSET"))
            and not self.interface.is_pk_composite()
        )
        if not deferred:
            inner = self.inner(aliases)
            inner = inner.offset(offset) if offset else inner
            return self.rows(inner if limit is None else inner.limit(limit), aliases)
        pk = self.interface.get_pk()
        # Only the id is selected, so the planner skips the offset rows inside a covering
        # index instead of reading each of them from the table.
        ids_query = self.inner({}).with_entities(pk).offset(offset).limit(limit)
        ids = [row[0] for row in ids_query]
        if not ids:
            return []
        return self.rows(self.inner(aliases, filtered=False).filter(pk.in_(ids)), aliases)

    def stored_key(self) -> str:
        """The name of this list (model, filters, order) in the anchor store."""
        model = self.interface.obj.__name__
        return anchor_store.list_key(
            model, filter_parts(self.filters), self.order_column, self.direction
        )

    def stored_anchor(self, offset: int) -> tuple[int, tuple[Any, Any]] | None:
        """The stored anchor at or before ``offset`` (see :mod:`crm_core.web.anchor_store`),
        for users who see the whole list."""
        if offset < anchor_store.setting("CRM_LIST_ANCHOR_STEP"):
            return None
        if not rules.sees_all(self.interface.obj):
            return None
        found = anchor_store.nearest(self.interface.session, self.stored_key(), offset)
        if found is None:
            return None
        position, value, record_id = found
        pk_name = self.interface.get_pk_name()
        try:
            typed = _typed(self.interface, self.order_column, json.loads(value))
            return position, (typed, _typed(self.interface, pk_name, record_id))
        except (ValueError, TypeError):
            return None

    def numbered(self, offset: int, limit: int | None, page_size: int, by_key: bool) -> list[Any]:
        """A numbered (OFFSET) page; deep ones start from a remembered anchor when there is
        one near (see :mod:`crm_core.web.anchors`) and leave anchors for the next."""
        deep = offset >= int(setting("CRM_LIST_DEFERRED_JOIN_OFFSET"))
        if not (by_key and deep and limit is not None):
            return self.at_offset(offset, limit)
        sig = anchors.signature(self.interface, self.filters, self.order_column, self.direction)
        anchor = anchors.nearest(sig, offset) or self.stored_anchor(offset)
        if anchor is None:
            found = self.at_offset(offset, limit)
        else:
            found = self.seek(anchor[1], limit, inclusive=True, skip=offset - anchor[0])
        shown = found[:page_size]
        if shown:
            first, last = (
                (offset, self.key(shown[0])),
                (offset + len(shown) - 1, self.key(shown[-1])),
            )
            anchors.remember(sig, [first, last])
        return found


def refresh_anchors(interface: Any, filters: Any, order_column: str, order_direction: str) -> int:
    """Store the sort key of every ``CRM_LIST_ANCHOR_STEP``-th row of a list (one pass over
    its index, numbered by ``row_number()``); returns how many anchors were stored. The
    caller commits."""
    request = _List(interface, filters, order_column, order_direction, None, False, ())
    step = int(anchor_store.setting("CRM_LIST_ANCHOR_STEP"))
    column, pk = getattr(interface.obj, order_column), interface.get_pk()
    way = asc if request.direction == "asc" else desc
    number = func.row_number().over(order_by=[way(column), way(pk)]).label("n")
    numbered = (
        request.inner({})
        .with_entities(column.label("v"), pk.label("k"), number)
        .order_by(None)
        .subquery()
    )
    query = select(numbered.c.v, numbered.c.k, numbered.c.n).where((numbered.c.n - 1) % step == 0)
    found = [
        (int(n) - 1, json.dumps(_jsonable(v), ensure_ascii=False), int(k))
        for v, k, n in interface.session.execute(query)
    ]
    anchor_store.replace(interface.session, request.stored_key(), found)
    return len(found)


def fetch_page(
    interface: Any,
    filters: Any,
    order_column: str = "",
    order_direction: str = "",
    page: int | None = None,
    page_size: int | None = None,
    select_columns: list[str] | None = None,
    outer_default_load: bool = False,
    *,
    cursor: str | None = None,
    keyset: bool = False,
    eager: tuple[str, ...] = (),
) -> ListPage:
    """One page of ``interface``'s model with FAB's filters and order.

    Page mode (``keyset=False``) takes FAB's zero-based ``page``; keyset mode takes a
    ``cursor`` (``None`` for the first page) and ignores ``page``. Either way the result
    carries ``next_cursor`` when more rows follow and the order can be continued by key or
    position. ``eager`` names many-to-one relations to load in the same query (list screens
    show them, and loading each separately costs a query per row). Raises
    :class:`CursorError` for a bad cursor.
    """
    if keyset:
        order_column, order_direction = keyset_order(interface, order_column, order_direction)
    by_key = bool(order_column) and seekable(interface, order_column)
    if by_key and select_columns and order_column not in select_columns:
        # The next cursor reads the sort value of the last row: load it with the row.
        select_columns = [*select_columns, order_column]
    request = _List(
        interface, filters, order_column, order_direction, select_columns, outer_default_load, eager
    )
    position: Position | None = None
    if keyset and cursor:
        position = decode_cursor(interface, cursor)
        if (position.column, position.direction) != (order_column, request.direction):
            raise CursorError("The cursor belongs to another sort order")
    limit = None if page_size is None else page_size + 1  # one more: is there a next page?

    offset = 0
    if position is not None and position.key is not None and by_key:
        rows = request.seek(position.key, limit, inclusive=False)
    elif position is not None:
        offset = position.offset or 0
        rows = request.at_offset(offset, limit)
    else:
        offset = 0 if keyset or not page or not page_size else page * page_size
        rows = request.numbered(offset, limit, page_size or 0, by_key)
    if page_size is None:  # everything at once: the rows are the count
        return ListPage(rows, len(rows))
    count, estimated = cheap_count(interface, filters)
    more = len(rows) > page_size
    rows = rows[:page_size]
    next_cursor = None
    if more and rows and order_column:
        if by_key:
            after = Position(order_column, request.direction, key=request.key(rows[-1]))
        else:
            after = Position(order_column, request.direction, offset=offset + page_size)
        next_cursor = encode_cursor(after)
    return ListPage(rows, count, estimated, next_cursor)


class ListingInterface(SQLAInterface):
    """FAB's SQLAlchemy interface with list queries answered by :func:`fetch_page` and
    "starts with" answered from an index (:mod:`crm_core.web.search`)."""

    filter_converter_class = CrmFilterConverter
    #: Column -> normaliser of typed prefixes to the stored form (see crm_core.web.search).
    prefix_search: dict[str, PrefixNormaliser] = {}

    def get_filters(self, search_columns: Any = None, search_filters: Any = None) -> CrmFilters:
        """A filter set for this model (lazily built, REST operators resolved per view)."""
        return CrmFilters(
            self.filter_converter_class,
            self,
            search_columns=search_columns or [],
            search_filters=search_filters,
        )

    def apply_order_by(
        self,
        query: Query[Any],
        order_column: str,
        order_direction: str,
        aliases_mapping: dict[str, Any] | None = None,
        bypass_many_to_many: bool = False,
        add_pk: bool = False,
    ) -> Query[Any]:
        """FAB's order, and custom fields (``custom__<name>``) sorted by their typed value."""
        from ..lowcode import live
        from ..lowcode.query import expression

        defn = live.field_of(self.obj, order_column) if order_column else None
        if defn is None:
            return super().apply_order_by(  # type: ignore[no-any-return]
                query, order_column, order_direction, aliases_mapping, bypass_many_to_many, add_pk
            )
        way = asc if order_direction == "asc" else desc
        query = query.order_by(way(expression(self.obj, defn)))
        return query.order_by(way(self.get_pk())) if add_pk else query

    def get_inner_filters(self, filters: Any) -> CrmFilters:
        """FAB's inner filters (plain columns, many-to-one and one-to-one relations), reusing
        the filter objects instead of building a new filter set per query."""
        inner = CrmFilters(self.filter_converter_class, self)
        pairs = zip(getattr(filters, "filters", []), getattr(filters, "values", []), strict=True)
        for flt, value in pairs:
            name = flt.column_name
            if not is_column_dotted(name) or (
                self.is_relation_many_to_one(get_column_root_relation(name))
                or self.is_relation_one_to_one(get_column_root_relation(name))
            ):
                inner._add_filter(flt, value)
        return inner

    def apply_inner_select_joins(
        self,
        query: Query[Any],
        select_columns: list[str] | None = None,
        aliases_mapping: dict[str, Any] | None = None,
    ) -> Query[Any]:
        """FAB's column selection with one ``load_only`` for the plain columns (FAB adds an
        option per column, and each makes the statement's cache key costlier)."""
        if not select_columns:
            return query
        plain = [
            getattr(self.obj, c)
            for c in select_columns
            if not is_column_dotted(c)
            and not self.is_relation(c)
            and not self.is_property_or_function(c)
        ]
        if plain:
            query = query.options(Load(self.obj).load_only(*plain))
        dotted = [c for c in select_columns if is_column_dotted(c)]
        return super().apply_inner_select_joins(query, dotted, aliases_mapping)  # type: ignore[no-any-return]

    def query(
        self,
        filters: Any = None,
        order_column: str = "",
        order_direction: str = "",
        page: int | None = None,
        page_size: int | None = None,
        select_columns: list[str] | None = None,
        outer_default_load: bool = False,
    ) -> tuple[int, list[Any]]:
        """FAB's list query, answered by :func:`fetch_page`: the same rows, with a count that
        is exact only when cheap (see :meth:`query_page` for the flag)."""
        result = self.query_page(
            filters,
            order_column,
            order_direction,
            page=page,
            page_size=page_size,
            select_columns=select_columns,
            outer_default_load=outer_default_load,
        )
        return result.count, result.rows

    #: One list page with its count, ``count_is_estimate`` and ``next_cursor``.
    query_page = fetch_page
