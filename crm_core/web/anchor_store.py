"""Stored page anchors: where every thousandth row of a big list sits, shared by all workers.

A jump straight to page 20,000 of a million-row list has no nearby page to seek from
(:mod:`crm_core.web.anchors` remembers only pages shown a moment ago), and skipping 500,000
index entries takes longer than a list may. For the lists people open without a filter (each
screen's and API's base filters, in its default order and the orders in ``anchor_orders``), the
``core.list_anchors`` job records the sort key of every ``CRM_LIST_ANCHOR_STEP``-th row in
``crm_list_anchor``; a deep numbered page then seeks from the stored anchor before it and skips
fewer than ``CRM_LIST_ANCHOR_STEP`` rows.

Stored anchors describe the list as the job last saw it. Rows added, archived or re-sorted
since then shift a deep page by that many rows, as OFFSET paging does between two clicks; the
next page seeks from the rows just shown, so paging on from a jump neither repeats nor skips a
row. They serve only users who see the whole list: record rules that hide rows from a user make
that user's list another list (and a shorter one).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from flask import current_app, has_app_context
from flask_appbuilder import Model
from sqlalchemy import DateTime, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from ..db import utcnow

#: Settings (app config keys) and their defaults.
DEFAULTS: dict[str, Any] = {
    "CRM_LIST_ANCHOR_STEP": 1_000,  # rows between two stored anchors
    "CRM_LIST_ANCHOR_MIN_ROWS": 50_000,  # lists smaller than this are not worth anchors
}


def setting(key: str) -> Any:
    """An anchor setting from the app config, or its default."""
    if has_app_context():
        return current_app.config.get(key, DEFAULTS[key])
    return DEFAULTS[key]


class ListAnchor(Model):
    """The sort key of the row at ``position`` (0-based) of one list."""

    __tablename__ = "crm_list_anchor"
    __table_args__ = (UniqueConstraint("list_key", "position", name="uq_crm_list_anchor_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_key: Mapped[str] = mapped_column(String(40), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    sort_value: Mapped[str] = mapped_column(String(500), nullable=False)
    record_id: Mapped[int] = mapped_column(Integer, nullable=False)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


def list_key(model: str, filter_parts: tuple[Any, ...], column: str, direction: str) -> str:
    """A stable name for one list (model, filters, order), the same in every process."""
    raw = json.dumps([model, [list(p) for p in filter_parts], column, direction], default=str)
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


def nearest(session: Any, key: str, offset: int) -> tuple[int, str, int] | None:
    """The stored anchor at or before ``offset``: (position, sort value as JSON, record id)."""
    row = session.execute(
        select(ListAnchor.position, ListAnchor.sort_value, ListAnchor.record_id)
        .where(ListAnchor.list_key == key, ListAnchor.position <= offset)
        .order_by(ListAnchor.position.desc())
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def replace(session: Any, key: str, anchors: list[tuple[int, str, int]]) -> None:
    """Replace the anchors of list ``key`` (in the caller's transaction)."""
    session.execute(delete(ListAnchor).where(ListAnchor.list_key == key))
    if not anchors:
        return
    now = utcnow()
    rows = [
        {"list_key": key, "position": p, "sort_value": v, "record_id": r, "refreshed_at": now}
        for p, v, r in anchors
    ]
    session.execute(ListAnchor.__table__.insert(), rows)
