"""The audit check every test of the ``app`` fixture runs: each committed write of a business
record (a model with ``__crm_event__``) or of configuration (``__crm_audit__``) left exactly one
audit entry with the right diff.

While the test runs, :class:`AuditCheck` listens to the app's session on its own: before each
flush it notes which business records are new, changed or deleted; after the flush it works out
the entry each one should have (operation and ``{field: [old, new]}``); at commit those become
expected, at rollback they are dropped. At the end of the test the expected entries are compared
with the rows of ``crm_audit_log``, before the database is reset.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Flask
from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session

from ..data.imports.bulk import WRITTEN_KEY
from ..db import session
from ..security.audit import RECORD_OPERATIONS, AuditLog, audited_name
from ..security.encrypted_copies import reveal_changes

_SKIP = frozenset({"updated_at", "version"})

Entry = tuple[str, int, str, str]  # model, record id, operation, changes as sorted JSON


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _expected_entry(obj: Any, kind: str) -> Entry | None:
    state = inspect(obj)
    diff: dict[str, list[Any]] = {}
    for attr in state.mapper.column_attrs:
        if attr.key in _SKIP or attr.key == "id":
            continue
        value = state.dict.get(attr.key)
        if kind == "new":
            if value not in (None, ""):
                diff[attr.key] = [None, _plain(value)]
        elif kind == "deleted":
            if value not in (None, ""):
                diff[attr.key] = [_plain(value), None]
        else:
            added, _unchanged, deleted = state.attrs[attr.key].history
            old = deleted[0] if deleted and deleted[0] != "" else None
            new = added[0] if added and added[0] != "" else None
            if (added or deleted) and old != new:
                diff[attr.key] = [_plain(old), _plain(new)]
    for rel in state.mapper.relationships:  # many-to-many links, by the linked names
        if rel.secondary is None or kind == "deleted":
            continue
        added, unchanged, deleted = state.attrs[rel.key].history
        before = sorted(str(x) for x in [*unchanged, *deleted])
        after = sorted(str(x) for x in [*unchanged, *added])
        if kind == "new" and after:
            diff[rel.key] = [None, after]
        elif kind != "new" and before != after:
            diff[rel.key] = [before, after]
    if kind == "new":
        operation = "create"
    elif kind == "deleted":
        operation = "delete"
    elif not diff:
        return None
    elif diff.get("active") == [True, False]:
        operation = "archive"
    elif diff.get("active") == [False, True]:
        operation = "restore"
    else:
        operation = "update"
    return (
        str(audited_name(obj)),
        obj.id,
        operation,
        json.dumps(diff, sort_keys=True, ensure_ascii=False),
    )


class AuditCheck:
    """Expected audit entries of the committed writes through ``app``'s session."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.target = app.extensions["crm_db"].session
        self.expected: list[Entry] = []
        self.baseline = 0
        self._noted = f"crm_test_audit_noted_{id(self)}"  # keys in session.info
        self._pending = f"crm_test_audit_pending_{id(self)}"
        self._listeners: list[tuple[str, Callable[..., Any]]] = [
            ("before_flush", self._before_flush),
            ("after_flush", self._after_flush),
            ("after_commit", self._after_commit),
            ("after_transaction_end", self._after_transaction_end),
        ]

        self._listening = False

    def start(self) -> None:
        # Entries already there (the defaults the last reset restored) are not this test's.
        with self.app.app_context():
            self.baseline = session().scalar(select(func.max(AuditLog.id))) or 0
            session().rollback()
        for name, fn in self._listeners:
            event.listen(self.target, name, fn)
        self._listening = True

    def stop(self) -> None:
        if self._listening:
            for name, fn in self._listeners:
                event.remove(self.target, name, fn)
            self._listening = False

    def _before_flush(self, s: Session, _ctx: Any, _instances: Any) -> None:
        noted: list[tuple[Any, str]] = []
        for kind, objs in (("new", s.new), ("dirty", s.dirty), ("deleted", s.deleted)):
            noted.extend((obj, kind) for obj in objs if audited_name(obj) is not None)
        s.info[self._noted] = noted

    def _after_flush(self, s: Session, _ctx: Any) -> None:
        for obj, kind in s.info.pop(self._noted, []):
            entry = _expected_entry(obj, kind)
            if entry is not None:
                s.info.setdefault(self._pending, []).append(entry)

    def _after_commit(self, s: Session) -> None:
        self.expected.extend(s.info.pop(self._pending, []))
        for model, ids, rows in s.info.pop(WRITTEN_KEY, []):  # an import's Core inserts
            for record_id, row in zip(ids, rows, strict=True):
                diff = {
                    k: [None, _plain(v)]
                    for k, v in row.items()
                    if k not in _SKIP and k != "id" and v not in (None, "")
                }
                entry = json.dumps(diff, sort_keys=True, ensure_ascii=False)
                self.expected.append((model.__crm_event__, record_id, "create", entry))

    def _after_transaction_end(self, s: Session, transaction: Any) -> None:
        if transaction.parent is None:  # rolled back (a commit has taken its entries already)
            s.info.pop(self._pending, None)
            s.info.pop(self._noted, None)
            s.info.pop(WRITTEN_KEY, None)

    def actual(self) -> list[Entry]:
        with self.app.app_context():
            # Account events (lock, unlock) are not record writes; their tests check them.
            query = select(AuditLog).where(
                AuditLog.operation.in_(RECORD_OPERATIONS), AuditLog.id > self.baseline
            )
            rows = session().scalars(query.order_by(AuditLog.id)).all()
            out = [
                (
                    r.model,
                    r.record_id,
                    r.operation,
                    json.dumps(
                        reveal_changes(r.model, r.changes), sort_keys=True, ensure_ascii=False
                    ),
                )
                for r in rows
            ]
            session().rollback()
        return out

    def mismatch(self) -> str | None:
        """A message naming the missing and unexpected entries, or ``None`` when they agree."""
        expected, actual = Counter(self.expected), Counter(self.actual())
        if expected == actual:
            return None
        missing = "\n".join(f"  {e}" for e in (expected - actual).elements())
        extra = "\n".join(f"  {e}" for e in (actual - expected).elements())
        return (
            "the audit log does not match the writes of this test "
            "(one entry per changed business record per flush):\n"
            f"missing entries:\n{missing or '  -'}\nunexpected entries:\n{extra or '  -'}"
        )
