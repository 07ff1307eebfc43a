"""Index-friendly "starts with" search for every generated screen and REST list.

Flask-AppBuilder answers its ``sw`` (starts with) filter with ``col ILIKE 'x%'``, which no
b-tree index can serve on SQLite or PostgreSQL: a name search scans all rows. Here the same
operator (same ``sw`` name, same label, case-insensitive as before) becomes predicates an
ordinary index answers:

- SQLite compares text in code-point order (BINARY), so ``col >= 'x' AND col < 'y'`` (``y`` is
  ``x`` with its last character incremented) selects exactly the values starting with ``x``.
- PostgreSQL does the same when the database collation orders by code point (``C``,
  ``C.UTF-8``). Under a linguistic collation (``en_US.UTF-8``) such a range would miss rows
  (punctuation and digits sort differently), so there the filter uses a case-sensitive
  ``LIKE 'x%'``, which is exact and can use a ``text_pattern_ops`` index.
- MariaDB's ``LIKE 'x%'`` already uses the index and is case-insensitive under ``*_ci``.

Case-insensitivity is kept by OR-ing the case variants of the prefix (Chinese names, digits and
phone numbers have none, so they get one range). Columns stored in a normal form (phones in
E.164, upper-case codes) name a normaliser on the interface
(``CrmInterface(Customer, prefix_search={"phone": phone_search_prefix})``) that turns what a
user types into the stored form, which is then searched exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from flask import current_app, has_app_context
from flask_appbuilder.exceptions import (
    InvalidColumnFilterFABException,
    InvalidOperationFilterFABException,
)
from flask_appbuilder.models.filters import BaseFilter, Filters, map_args_filter
from flask_appbuilder.models.sqla.filters import (
    FilterStartsWith,
    SQLAFilterConverter,
    get_field_setup_query,
)
from sqlalchemy import and_, or_, text
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

#: Turns what a user typed into the stored form of a prefix, or ``None`` when it cannot.
PrefixNormaliser = Callable[[str], "str | None"]

# Up to 2**3 = 8 OR-ed ranges; a longer mixed-case prefix is cut before its 4th cased
# character and the full prefix is then checked with ILIKE on the few rows the ranges find.
_MAX_CASED = 3
_ESCAPE = "/"


def successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (code-point
    order), or ``None`` when there is none (a prefix of only U+10FFFF)."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be stored as UTF-8
            code = 0xE000
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def escape_like(value: str) -> str:
    """``value`` with LIKE wildcards escaped by ``/``: a search for ``50%`` finds "50%"."""
    return (
        value.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")
    )


def case_variants(prefix: str) -> tuple[list[str], bool]:
    """The spellings of ``prefix`` a case-insensitive search must find, and whether they are
    complete (``False`` when the prefix was cut to keep the number of variants small)."""
    positions = [i for i, ch in enumerate(prefix) if ch.lower() != ch.upper()]
    complete = True
    if len(positions) > _MAX_CASED:
        prefix = prefix[: positions[_MAX_CASED]]
        positions = positions[:_MAX_CASED]
        complete = False
    choices: list[tuple[str, ...]] = []
    for i, ch in enumerate(prefix):
        if i in positions:
            forms = {ch, ch.lower(), ch.upper()}
            if any(len(f) != 1 for f in forms):  # 'ß' -> 'SS': leave to the ILIKE check
                complete = False
            choices.append(tuple(sorted(forms)))
        else:
            choices.append((ch,))
    variants = sorted({"".join(combo) for combo in itertools.product(*choices)})
    return variants, complete


def binary_collation(engine: Engine) -> bool:
    """True when the database orders text by code point, so ranges select prefixes exactly.

    SQLite's default BINARY collation always does; PostgreSQL does for ``C``/``POSIX``/``C.*``
    databases; MariaDB's ``*_ci`` collations do not. Cached per database for the app.
    """
    name = engine.dialect.name
    if name == "sqlite":
        return True
    if name != "postgresql":
        return False
    cache: dict[str, bool] = (
        current_app.extensions.setdefault("crm_collation", {}) if has_app_context() else {}
    )
    key = str(engine.url)
    if key not in cache:
        with engine.connect() as conn:
            collate = conn.scalar(
                text("SELECT datcollate FROM pg_database WHERE datname = current_database()")
            )
        value = str(collate or "")
        cache[key] = value in ("C", "POSIX", "ucs_basic") or value.upper().startswith("C.")
    return cache[key]


def exact_prefix(column: Any, prefix: str, engine: Engine) -> ColumnElement[bool]:
    """Values of ``column`` that start with ``prefix`` as stored (case-sensitive except on
    MariaDB ``*_ci`` columns), in the form the backend's b-tree index can answer."""
    if binary_collation(engine):
        upper = successor(prefix)
        lower_bound: ColumnElement[bool] = column >= prefix
        return and_(lower_bound, column < upper) if upper is not None else lower_bound
    return column.like(escape_like(prefix) + "%", escape=_ESCAPE)


def starts_with(
    column: Any, typed: str, engine: Engine, normalise: PrefixNormaliser | None = None
) -> ColumnElement[bool]:
    """The condition for "``column`` starts with what the user typed".

    With ``normalise`` (the column is stored in a normal form), the normalised prefix is
    matched exactly; without one, or when it gives ``None``, the match ignores case like
    Flask-AppBuilder's ``ILIKE``.
    """
    typed = str(typed)
    if normalise is not None:
        stored = normalise(typed)
        if stored:
            return exact_prefix(column, stored, engine)
    if not typed:
        return column.is_not(None)
    if engine.dialect.name == "mysql":  # LIKE is case-insensitive under *_ci collations
        return column.like(escape_like(typed) + "%", escape=_ESCAPE)
    variants, complete = case_variants(typed)
    condition = or_(*(exact_prefix(column, v, engine) for v in variants))
    if not complete:
        condition = and_(condition, column.ilike(escape_like(typed) + "%", escape=_ESCAPE))
    return condition


class KeepsFabOperators(BaseFilter):
    """A filter that leaves FAB's process-wide operator map alone.

    FAB registers every filter class it constructs in a map its REST layer reads; keeping
    FAB's own classes there lets plain FAB views in the same process keep their behaviour.
    The CRM's APIs resolve operators per view (:meth:`CrmFilters.rest_add_filters`).
    """

    def __init__(self, column_name: str, datamodel: Any, is_related_view: bool = False) -> None:
        previous = map_args_filter.get(self.arg_name)
        super().__init__(column_name, datamodel, is_related_view)
        if previous is None:
            map_args_filter.pop(self.arg_name, None)
        else:
            map_args_filter[self.arg_name] = previous


class FilterStartsWithIndexed(KeepsFabOperators, FilterStartsWith):
    """Flask-AppBuilder's "Starts with" (operator ``sw``) answered from a b-tree index."""

    def apply(self, query: Any, value: Any) -> Any:
        query, field = get_field_setup_query(query, self.model, self.column_name)
        normalisers: Mapping[str, PrefixNormaliser] = getattr(self.datamodel, "prefix_search", {})
        engine = self.datamodel.session.get_bind()
        return query.filter(starts_with(field, value, engine, normalisers.get(self.column_name)))


class CrmFilterConverter(SQLAFilterConverter):
    """FAB's filters per column type, with "starts with" answered from an index, and the
    filters of custom fields (``custom__<name>``, see :mod:`crm_core.lowcode.query`)."""

    conversion_table = tuple(
        (test, [FilterStartsWithIndexed if f is FilterStartsWith else f for f in classes])
        for test, classes in SQLAFilterConverter.conversion_table
    )

    def convert(self, col_name: str) -> Any:
        from ..lowcode import live, query

        if col_name.startswith(live.PREFIX):
            defn = live.field_of(self.datamodel.obj, col_name)
            if defn is None:
                return []
            return [cls(col_name, self.datamodel) for cls in query.filters_for(defn)]
        return super().convert(col_name)


class CrmFilters(Filters):
    """FAB's filter set, resolving REST operators from the view's own filters, and built
    lazily.

    FAB looks ``opr`` up in a process-wide map where the last filter class constructed for a
    name wins, so two apps (or a plugin with its own ``sw``) in one process could swap each
    other's filters. Resolving from the view's search filters is deterministic. FAB also
    builds every filter of every column whenever a filter set is made (several times per list
    request); here that table is built on first use.
    """

    def __init__(
        self,
        filter_converter: Any,
        datamodel: Any,
        search_columns: list[str] | None = None,
        search_filters: dict[str, list[BaseFilter]] | None = None,
    ) -> None:
        self.search_columns = search_columns or []
        self.filter_converter = filter_converter
        self.datamodel = datamodel
        self.clear_filters()
        self._every_filter: dict[str, list[BaseFilter]] | None = None
        self._search_filters = self._get_filters(self.search_columns)
        for column, extra in (search_filters or {}).items():
            self._search_filters[column] += extra

    @property  # type: ignore[override]
    def _all_filters(self) -> dict[str, list[BaseFilter]]:
        if self._every_filter is None:
            self._every_filter = self._get_filters(self.datamodel.get_columns_list())
        return self._every_filter

    @_all_filters.setter
    def _all_filters(self, value: dict[str, list[BaseFilter]]) -> None:
        self._every_filter = value

    def add_filter_index(self, column_name: str, filter_instance_index: int, value: Any) -> None:
        """A filter of a list screen's URL (``_flt_<index>_<column>``), from the screen's
        own search filters (custom fields included) or FAB's table of every column."""
        found = self._search_filters.get(column_name) or self._all_filters.get(column_name)
        if found and 0 <= filter_instance_index < len(found):
            self._add_filter(found[filter_instance_index], value)

    def get_joined_filters(self, filters: Filters) -> CrmFilters:
        """A new filter set with this set's active filters followed by ``filters``'."""
        joined = CrmFilters(self.filter_converter, self.datamodel)
        joined.filters = self.filters + filters.filters
        joined.values = self.values + filters.values
        return joined

    def copy(self) -> CrmFilters:
        """A copy of this filter set's active filters."""
        copied = CrmFilters(self.filter_converter, self.datamodel)
        copied.filters = list(self.filters)
        copied.values = list(self.values)
        return copied

    def rest_add_filters(self, data: list[dict[str, Any]]) -> None:
        """Add the filters of a REST ``q`` argument (``[{col, opr, value}, ...]``)."""
        for item in data:
            try:
                opr, col, value = item["opr"], item["col"], item["value"]
            except KeyError:
                return  # FAB ignores a malformed filter the same way
            if col not in self.search_columns:
                raise InvalidColumnFilterFABException(f"Filter column: {col} not allowed to filter")
            chosen: BaseFilter | None = next(
                (f for f in self._search_filters.get(col, []) if f.arg_name == opr), None
            )
            if chosen is None:
                raise InvalidOperationFilterFABException(
                    f"Filter operation: {opr} not allowed on column: {col}"
                )
            self._add_filter(chosen, value)
