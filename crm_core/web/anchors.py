"""Remembered page boundaries, so that FAB's numbered pages can be read by key.

A list screen's pager asks for "page 20,001" by number, which SQL can only answer by skipping
500,000 rows. But people reach page 20,001 from page 20,000 (or reload a page they are on), and
the list has just read the rows around it. Each numbered page served records *anchors*: the
sort key of its first and last rows and their positions. A later request for a nearby position
seeks from the nearest anchor (``WHERE (name, id) >= (:key, :id) OFFSET <a few>``) instead of
skipping from the start.

Anchors belong to one app, database, model, filter set, sort order and user (record rules make
lists differ per user), and expire after ``CRM_LIST_ANCHOR_TTL`` seconds. Rows added or
archived before an anchor since it was recorded shift a page by that many rows, which is what
OFFSET paging does between two clicks as well.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from flask import current_app, has_app_context

from .counts import list_signature

DEFAULTS: dict[str, Any] = {
    "CRM_LIST_ANCHOR_TTL": 60,  # seconds an anchor is trusted
    "CRM_LIST_ANCHOR_MAX_SKIP": 5_000,  # rows a request may still skip after its anchor
}
_MAX_LISTS = 2_000  # remembered lists per app (least recently used dropped first)
_MAX_ANCHORS = 64  # anchors per list (oldest dropped first)

Key = tuple[Any, Any]
Signature = tuple[Any, ...]


def _setting(key: str) -> Any:
    return current_app.config.get(key, DEFAULTS[key])


def _store() -> tuple[threading.Lock, OrderedDict[Signature, dict[int, tuple[float, Key]]]] | None:
    if not has_app_context():
        return None
    ext = current_app.extensions
    if "crm_list_anchors" not in ext:
        ext.setdefault("crm_list_anchors", (threading.Lock(), OrderedDict()))
    return ext["crm_list_anchors"]  # type: ignore[no-any-return]


def signature(interface: Any, filters: Any, column: str, direction: str) -> Signature:
    """What makes two list requests the same list: database, model, filters, user, order."""
    return (*list_signature(interface, filters), column, direction)


def nearest(sig: Signature, offset: int) -> tuple[int, Key] | None:
    """The closest live anchor at or before ``offset`` within the allowed skip."""
    store = _store()
    if store is None:
        return None
    lock, lists = store
    now = time.monotonic()
    max_skip = int(_setting("CRM_LIST_ANCHOR_MAX_SKIP"))
    with lock:
        anchors = lists.get(sig)
        if not anchors:
            return None
        lists.move_to_end(sig)
        best = None
        for at, (expires, key) in anchors.items():
            usable = expires > now and at <= offset and offset - at <= max_skip
            if usable and (best is None or at > best[0]):
                best = (at, key)
        return best


def remember(sig: Signature, found: list[tuple[int, Key]]) -> None:
    """Record the sort keys of rows at known positions of a list."""
    store = _store()
    if store is None or not found:
        return
    lock, lists = store
    expires = time.monotonic() + float(_setting("CRM_LIST_ANCHOR_TTL"))
    with lock:
        anchors = lists.setdefault(sig, {})
        lists.move_to_end(sig)
        for offset, key in found:
            anchors.pop(offset, None)
            anchors[offset] = (expires, key)
        while len(anchors) > _MAX_ANCHORS:
            anchors.pop(next(iter(anchors)))
        while len(lists) > _MAX_LISTS:
            lists.popitem(last=False)


def forget() -> None:
    """Drop every anchor of the app (tests and benchmarks measure cold pages with it)."""
    store = _store()
    if store is not None:
        with store[0]:
            store[1].clear()
