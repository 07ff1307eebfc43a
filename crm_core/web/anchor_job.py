"""The ``core.list_anchors`` job: keep the stored page anchors of big lists current."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from ..db import session
from . import anchor_store
from .counts import filter_parts, table_estimate
from .listing import ListingInterface, keyset_order, refresh_anchors, seekable

log = logging.getLogger(__name__)


def big_lists() -> list[tuple[Any, Any, str, str]]:
    """(interface, base filters, order column, direction) of every list screen and API over a
    table of at least ``CRM_LIST_ANCHOR_MIN_ROWS`` rows: their default order and the orders
    they name in ``anchor_orders``; each list once, however many screens show it."""
    minimum = int(anchor_store.setting("CRM_LIST_ANCHOR_MIN_ROWS"))
    found: dict[tuple[Any, ...], tuple[Any, Any, str, str]] = {}
    for view in current_app.appbuilder.baseviews:  # type: ignore[attr-defined]
        interface = getattr(view, "datamodel", None)
        filters = getattr(view, "_base_filters", None)
        if not isinstance(interface, ListingInterface) or filters is None:
            continue
        try:
            total = table_estimate(interface.session, interface.obj.__table__)
        except SQLAlchemyError:  # a table not migrated yet: no anchors for it
            interface.session.rollback()
            continue
        if total is None or total < minimum:
            continue
        orders = [tuple(view.base_order)] if getattr(view, "base_order", None) else []
        orders += [tuple(o) for o in getattr(view, "anchor_orders", ())]
        for column, direction in orders:
            column, direction = keyset_order(interface, column, direction)
            if not seekable(interface, column):
                continue
            key = (interface.obj.__name__, filter_parts(filters), column, direction)
            found.setdefault(key, (interface, filters, column, direction))
    return list(found.values())


def refresh_list_anchors(_app: Any = None) -> dict[str, int]:
    """Re-measure the anchors of every big list; each list commits on its own, and one that
    fails (a plugin's table not migrated yet) is logged and skipped."""
    lists = stored = failed = 0
    for interface, filters, column, direction in big_lists():
        try:
            stored += refresh_anchors(interface, filters, column, direction)
            session().commit()
            lists += 1
        except SQLAlchemyError:
            session().rollback()
            log.exception("page anchors of %s by %s failed", interface.obj.__name__, column)
            failed += 1
    return {"lists": lists, "anchors": stored, "failed": failed}
