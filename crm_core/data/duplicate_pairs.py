"""Likely duplicate customers, found by the duplicate rules and kept for review.

The job ``core.duplicate_pairs`` applies the active duplicate rules of customers
(:mod:`crm_core.lowcode.duplicates`) to the customers already in the CRM and keeps each pair it
finds in ``crm_duplicate_pair`` (lower id on the left) with a score of 0–100 and the rules that
matched. Reviewers merge a pair or dismiss it (不是重复); a dismissed pair never comes back.

- ``exact`` rules group the stored, normalised values in SQL (``GROUP BY … HAVING COUNT(*) >
  1``), a batch of values at a time; a value shared by many customers (a switchboard number)
  pairs only its first :data:`SHARED_VALUE_CAP` customers.
- ``fuzzy`` rules compare each customer with its :data:`WINDOW` neighbours in the order of the
  field (the name index): after sorting, 上海某某科技有限公司 sits next to 上海某某科技. Names are
  compared with rapidfuzz after :func:`~crm_core.lowcode.duplicates.normalise_name`.

The first run (and any run after a duplicate rule changed) reads every active customer, in
batches; later runs look only at customers changed since the last successful run, and at their
neighbours. Open pairs not found again for the customers a run looked at (archived, merged or
changed since) are removed. Only active customers count.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask
from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from rapidfuzz import fuzz
from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from ..customers.models import Customer
from ..db import session as current_session
from ..db import utcnow
from ..jobs.models import JobRun
from ..lowcode.duplicates import DuplicateRule, _column, normalise_name
from ..lowcode.live import field_of
from ..security.rules import read_criteria, unrestricted

log = logging.getLogger(__name__)

JOB_ID = "core.duplicate_pairs"
MODEL = "Customer"
STATUSES = {"open": _l("Open"), "merged": _l("Merged"), "dismissed": _l("Not a duplicate")}
#: Customers read (or values grouped) per query.
BATCH = 1000
#: How many neighbours in the field's order a fuzzy rule compares each customer with.
WINDOW = 20
#: Customers paired per shared value of an exact rule.
SHARED_VALUE_CAP = 20


class DuplicatePair(Model):
    """Two records of ``model`` that look like one, ``left_id < right_id``."""

    __tablename__ = "crm_duplicate_pair"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    left_id: Mapped[int] = mapped_column(Integer, nullable=False)
    right_id: Mapped[int] = mapped_column(Integer, nullable=False)
    score: Mapped[int] = mapped_column(Integer, nullable=False)
    #: ``[{"rule": name, "field": field, "method": "exact"|"fuzzy", "score": n}, ...]``
    reasons: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="open", nullable=False)
    #: When the finder first found the pair.
    found_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)

    decided_by = relationship("User", foreign_keys=[decided_by_id])

    __table_args__ = (
        UniqueConstraint("model", "left_id", "right_id", name="uq_crm_duplicate_pair"),
        Index("ix_crm_duplicate_pair_open", "model", "status", "score", "id"),
        Index("ix_crm_duplicate_pair_right", "model", "right_id"),
    )

    def __repr__(self) -> str:
        return f"<DuplicatePair {self.model} {self.left_id}/{self.right_id} {self.score}>"


# ------------------------------------------------------------------------------ finding


@dataclass
class _Found:
    score: int
    reasons: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Run:
    """One run of the finder: the pairs found so far (kept as id pairs only) and counts."""

    session: Session
    pending: dict[tuple[int, int], _Found] = field(default_factory=dict)
    seen: set[tuple[int, int]] = field(default_factory=set)
    new: int = 0

    def add(self, a: int, b: int, rule: DuplicateRule, score: int) -> None:
        if a == b:
            return
        key = (a, b) if a < b else (b, a)
        reason = {"rule": rule.name, "field": rule.field, "method": rule.method, "score": score}
        entry = self.pending.setdefault(key, _Found(score))
        entry.score = max(entry.score, score)
        if reason not in entry.reasons:
            entry.reasons.append(reason)
        if len(self.pending) >= BATCH:
            self.store()

    def store(self) -> None:
        """Write the pending pairs: new ones added, open ones refreshed, decided ones kept."""
        if not self.pending:
            return
        lefts = {a for a, _ in self.pending}
        rights = {b for _, b in self.pending}
        rows = self.session.scalars(
            select(DuplicatePair).where(
                DuplicatePair.model == MODEL,
                DuplicatePair.left_id.in_(lefts),
                DuplicatePair.right_id.in_(rights),
            )
        )
        existing = {(r.left_id, r.right_id): r for r in rows}
        for key, found in self.pending.items():
            row = existing.get(key)
            if row is None:
                self.session.add(
                    DuplicatePair(
                        model=MODEL,
                        left_id=key[0],
                        right_id=key[1],
                        score=found.score,
                        reasons=found.reasons,
                    )
                )
                self.new += 1
            elif row.status == "open":
                reasons = found.reasons
                if key in self.seen:  # found earlier in this run by other rules
                    reasons = list(row.reasons or [])
                    reasons += [r for r in found.reasons if r not in reasons]
                    found.score = max(row.score, found.score)
                if row.reasons != reasons or row.score != found.score:
                    row.reasons, row.score = reasons, found.score
            self.seen.add(key)
        self.pending.clear()
        self.session.flush()

    def remove_stale(self, since: datetime | None) -> int:
        """Delete the open pairs this run should have found and did not (of the customers it
        read: all, or those changed since ``since``)."""
        query = select(DuplicatePair.id, DuplicatePair.left_id, DuplicatePair.right_id).where(
            DuplicatePair.model == MODEL, DuplicatePair.status == "open"
        )
        if since is not None:
            changed = _changed_ids(since)
            query = query.where(
                or_(DuplicatePair.left_id.in_(changed), DuplicatePair.right_id.in_(changed))
            )
        removed, last = 0, 0
        while True:
            rows = self.session.execute(
                query.where(DuplicatePair.id > last).order_by(DuplicatePair.id).limit(BATCH)
            ).all()
            if not rows:
                return removed
            stale = [pk for pk, a, b in rows if (a, b) not in self.seen]
            if stale:
                self.session.execute(
                    delete(DuplicatePair)
                    .where(DuplicatePair.id.in_(stale))
                    .execution_options(synchronize_session=False)
                )
                removed += len(stale)
            last = rows[-1][0]


def _active() -> Any:
    return Customer.active.is_(True)


def _changed_ids(since: datetime) -> Any:
    return select(Customer.id).where(Customer.updated_at >= since)


def _exact(run: _Run, rule: DuplicateRule, column: Any, since: datetime | None) -> None:
    """Pairs of active customers whose stored value of the rule's field is the same."""
    filled = and_(_active(), column.is_not(None), column != "")
    after: Any = None
    while True:
        values = select(column).where(filled)
        if since is not None:
            changed = select(column).where(Customer.updated_at >= since, column.is_not(None))
            values = values.where(column.in_(changed))
        if after is not None:
            values = values.where(column > after)
        values = values.group_by(column).having(func.count() > 1).order_by(column).limit(BATCH)
        batch = list(run.session.scalars(values))
        if not batch:
            return
        members = run.session.execute(
            select(column, Customer.id)
            .where(filled, column.in_(batch))
            .order_by(column, Customer.id)
        )
        groups: dict[Any, list[int]] = {}
        for value, pk in members:
            ids = groups.setdefault(value, [])
            if len(ids) < SHARED_VALUE_CAP:
                ids.append(pk)
        for ids in groups.values():
            for i, a in enumerate(ids):
                for b in ids[i + 1 :]:
                    run.add(a, b, rule, 100)
        after = batch[-1]


def _compare(run: _Run, rule: DuplicateRule, row: tuple[int, str], near: Any) -> None:
    pk, name = row
    for other_pk, other_name in near:
        if other_pk == pk or not name or not other_name:
            continue
        score = fuzz.ratio(name, other_name, score_cutoff=rule.threshold)
        if score:
            run.add(pk, other_pk, rule, int(round(score)))


def _sorted_rows(run: _Run, column: Any) -> Iterator[tuple[int, str]]:
    """``(id, normalised value)`` of every active customer in the field's order, in batches."""
    last: tuple[Any, int] | None = None
    while True:
        query = select(column, Customer.id).where(_active(), column.is_not(None))
        if last is not None:
            query = query.where(
                or_(column > last[0], and_(column == last[0], Customer.id > last[1]))
            )
        rows = run.session.execute(query.order_by(column, Customer.id).limit(BATCH)).all()
        for value, pk in rows:
            yield pk, normalise_name(str(value))
        if len(rows) < BATCH:
            return
        last = (rows[-1][0], rows[-1][1])


def _fuzzy_all(run: _Run, rule: DuplicateRule, column: Any) -> None:
    window: deque[tuple[int, str]] = deque(maxlen=WINDOW)
    for row in _sorted_rows(run, column):
        _compare(run, rule, row, window)
        window.append(row)


def _neighbours(run: _Run, column: Any, value: Any, pk: int) -> list[tuple[int, str]]:
    """The :data:`WINDOW` active customers before and after ``(value, pk)`` in the order."""
    base = select(Customer.id, column).where(_active(), column.is_not(None))
    before = base.where(or_(column < value, and_(column == value, Customer.id < pk)))
    after = base.where(or_(column > value, and_(column == value, Customer.id > pk)))
    rows = list(
        run.session.execute(before.order_by(column.desc(), Customer.id.desc()).limit(WINDOW))
    )
    rows += run.session.execute(after.order_by(column, Customer.id).limit(WINDOW)).all()
    return [(other, normalise_name(str(text))) for other, text in rows]


def _changed_rows(run: _Run, column: Any, since: datetime) -> Iterator[tuple[int, Any]]:
    """``(id, value)`` of the active customers changed since ``since``, in batches."""
    last: tuple[datetime, int] | None = None
    while True:
        query = select(Customer.updated_at, Customer.id, column).where(
            _active(), Customer.updated_at >= since, column.is_not(None)
        )
        if last is not None:
            query = query.where(
                or_(
                    Customer.updated_at > last[0],
                    and_(Customer.updated_at == last[0], Customer.id > last[1]),
                )
            )
        rows = run.session.execute(
            query.order_by(Customer.updated_at, Customer.id).limit(BATCH)
        ).all()
        for _when, pk, value in rows:
            yield pk, value
        if len(rows) < BATCH:
            return
        last = (rows[-1][0], rows[-1][1])


def _fuzzy_changed(run: _Run, rule: DuplicateRule, column: Any, since: datetime) -> None:
    for pk, value in _changed_rows(run, column, since):
        row = (pk, normalise_name(str(value)))
        _compare(run, rule, row, _neighbours(run, column, value, pk))


def _rule_column(rule: DuplicateRule) -> Any:
    """The SQL expression of the rule's field, or ``None`` when it cannot be compared in SQL
    (an unknown field, or a custom field encrypted at rest)."""
    defn = field_of(Customer, rule.field)
    if defn is not None and (getattr(defn, "encrypted", False) or defn.encryption_pending):
        return None
    return _column(Customer, rule.field)


def _since(s: Session) -> datetime | None:
    """Start of the last successful run, or ``None`` when everything must be read again (no
    run yet, or a duplicate rule of customers changed since)."""
    last = s.scalar(
        select(func.max(JobRun.started_at)).where(JobRun.job_id == JOB_ID, JobRun.outcome == "ok")
    )
    if last is None:
        return None
    changed_rule = s.scalar(
        select(func.max(DuplicateRule.updated_at)).where(DuplicateRule.model == MODEL)
    )
    if changed_rule is not None and changed_rule > last:
        return None
    return last  # type: ignore[no-any-return]


def find_pairs(s: Session, *, full: bool = False) -> dict[str, int]:
    """Apply the active duplicate rules of customers and keep the pairs found; returns counts.

    ``full`` reads every active customer; otherwise only those changed since the last
    successful run of the job are read (all of them when there was none). Runs unrestricted:
    the pairs a user may see are narrowed when they are listed."""
    with unrestricted(), s.no_autoflush:
        rules = list(
            s.scalars(
                select(DuplicateRule)
                .where(DuplicateRule.model == MODEL, DuplicateRule.active.is_(True))
                .order_by(DuplicateRule.position, DuplicateRule.id)
            )
        )
        since = None if full else _since(s)
        run = _Run(s)
        for rule in rules:
            column = _rule_column(rule)
            if column is None:
                log.warning("duplicate rule %s: field %s cannot be compared", rule.id, rule.field)
                continue
            if rule.method == "fuzzy":
                if since is None:
                    _fuzzy_all(run, rule, column)
                else:
                    _fuzzy_changed(run, rule, column, since)
            else:
                _exact(run, rule, column, since)
        run.store()
        removed = run.remove_stale(since)
    return {
        "rules": len(rules),
        "full": int(since is None),
        "found": len(run.seen),
        "new": run.new,
        "removed": removed,
    }


def run_job(_app: Flask) -> dict[str, int]:
    """The ``core.duplicate_pairs`` job."""
    return find_pairs(current_session())


# ------------------------------------------------------------------------------ reviewing


def _visible(pk_column: Any) -> Any:
    """The condition that the customer ``pk_column`` names is active and readable by this
    request's user (record rules)."""
    condition = and_(Customer.id == pk_column, _active())
    criteria = read_criteria(Customer)
    if criteria is not None:
        condition = and_(condition, criteria)
    return exists(select(Customer.id).where(condition))


def open_pairs(after: tuple[int, int] | None, limit: int) -> list[DuplicatePair]:
    """Open pairs of customers the user may read both of, highest score first, ``limit`` at a
    time after the keyset ``(score, id)`` of the last pair of the previous page."""
    query = select(DuplicatePair).where(
        DuplicatePair.model == MODEL,
        DuplicatePair.status == "open",
        _visible(DuplicatePair.left_id),
        _visible(DuplicatePair.right_id),
    )
    if after is not None:
        score, pk = after
        query = query.where(
            or_(
                DuplicatePair.score < score,
                and_(DuplicatePair.score == score, DuplicatePair.id > pk),
            )
        )
    query = query.order_by(DuplicatePair.score.desc(), DuplicatePair.id).limit(limit)
    return list(current_session().scalars(query))


def decide(pair: DuplicatePair, status: str, user_id: int | None) -> None:
    """Record the review of ``pair``: ``merged`` or ``dismissed``."""
    pair.status = status
    pair.decided_by_id = user_id
    pair.decided_at = utcnow()


def pair_of(s: Session, a: int, b: int) -> DuplicatePair | None:
    """The pair of customers ``a`` and ``b``, if one was found."""
    left, right = min(a, b), max(a, b)
    return s.scalar(
        select(DuplicatePair).where(
            DuplicatePair.model == MODEL,
            DuplicatePair.left_id == left,
            DuplicatePair.right_id == right,
        )
    )


def drop_open_pairs_of(s: Session, pk: int) -> None:
    """Remove the open pairs of customer ``pk`` (merged away: it is no one's duplicate now)."""
    s.execute(
        delete(DuplicatePair)
        .where(
            DuplicatePair.model == MODEL,
            DuplicatePair.status == "open",
            or_(DuplicatePair.left_id == pk, DuplicatePair.right_id == pk),
        )
        .execution_options(synchronize_session=False)
    )
