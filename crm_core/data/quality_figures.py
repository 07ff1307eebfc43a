"""The figures of the data-quality page and of the Modules page's readiness gate.

Every query joins the scores to their customers through the ORM, so the record rules of the
user's request apply: a rep's figures are those of the customers the rep may read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import selectinload

from ..customers.models import Customer
from ..db import session
from ..settings.store import get_setting
from .quality import FIELDS, READINESS_DEFAULT, READINESS_SETTING, DataQuality, weights


@dataclass(frozen=True)
class FieldFigure:
    """How many of the customers a field applies to have it filled in."""

    key: str
    label: Any
    weight: int
    applies: int
    filled: int

    @property
    def percent(self) -> float | None:
        return 100 * self.filled / self.applies if self.applies else None


@dataclass(frozen=True)
class Figures:
    """The data quality of the customers a user may read (active ones with a score)."""

    customers: int
    score_total: int
    accurate: int
    duplicates: int
    computed_at: datetime | None
    fields: tuple[FieldFigure, ...] = ()

    def _share(self, part: int) -> float | None:
        return 100 * part / self.customers if self.customers else None

    @property
    def score(self) -> float | None:
        """The overall score: the mean of the customers' scores."""
        return self.score_total / self.customers if self.customers else None

    @property
    def accuracy(self) -> float | None:
        """客户信息准确率 (%): customers with no invalid value and no duplicate."""
        return self._share(self.accurate)

    @property
    def duplicate_rate(self) -> float | None:
        """Customers flagged as duplicates (%)."""
        return self._share(self.duplicates)


def _sum(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def figures(with_fields: bool = True) -> Figures:
    """The figures over the customers the current user may read, in one SQL aggregate (the
    record rules apply to the customers joined in)."""
    q = DataQuality
    company = Customer.kind == "company"
    columns = [
        func.count(),
        func.coalesce(func.sum(q.score), 0),
        _sum(and_(q.validity == 100, q.duplicate.is_(False))),
        _sum(q.duplicate.is_(True)),
        func.max(q.computed_at),
    ]
    if with_fields:
        columns.append(_sum(company))
        columns += [_sum(q.missing.op("&")(f.bit) != 0) for f in FIELDS]
    query = (
        select(*columns)
        .select_from(q)
        .join(Customer, Customer.id == q.customer_id)
        .where(Customer.active.is_(True))
    )
    row = list(session().execute(query).one())
    customers, total, accurate, duplicates, computed_at = row[:5]
    fields: list[FieldFigure] = []
    if with_fields:
        companies = int(row[5])
        current = weights()
        for f, missing in zip(FIELDS, row[6:], strict=True):
            applies = companies if f.companies_only else int(customers)
            filled = applies - int(missing)
            fields.append(FieldFigure(f.key, f.label, current[f.key], applies, filled))
    return Figures(
        customers=int(customers),
        score_total=int(total),
        accurate=int(accurate),
        duplicates=int(duplicates),
        computed_at=computed_at,
        fields=tuple(fields),
    )


def worst_records(after: tuple[int, int] | None = None, limit: int = 25) -> list[Any]:
    """``(DataQuality, Customer)`` of the lowest scores below 100 the user may read, lowest
    first, after the ``(score, customer id)`` of the previous page's last row."""
    q = DataQuality
    query = (
        select(q, Customer)
        .join(Customer, Customer.id == q.customer_id)
        .where(Customer.active.is_(True), q.score < 100)
        .order_by(q.score, q.customer_id)
        .limit(limit)
        .options(selectinload(Customer.owner))
    )
    if after is not None:
        score, pk = after
        query = query.where(or_(q.score > score, and_(q.score == score, q.customer_id > pk)))
    return [tuple(row) for row in session().execute(query)]


@dataclass(frozen=True)
class Readiness:
    """Whether the customer data is good enough to recommend the analytics modules."""

    accuracy: float | None
    threshold: int

    @property
    def ready(self) -> bool:
        return self.accuracy is not None and self.accuracy >= self.threshold


def readiness() -> Readiness:
    """The current accuracy against the readiness setting (for the Modules page)."""
    try:
        threshold = int(get_setting(READINESS_SETTING))
    except (TypeError, ValueError):
        threshold = READINESS_DEFAULT
    return Readiness(figures(with_fields=False).accuracy, min(max(threshold, 0), 100))


def enable_warning(phase: int | None) -> str | None:
    """The warning shown when a phase-2 module is enabled before the data is ready."""
    if phase != 2:
        return None
    gate = readiness()
    if gate.ready:
        return None
    if gate.accuracy is None:
        return _(
            "Customer information accuracy has not been measured yet; analytics modules are "
            "recommended from %(threshold)s %%. See Data quality.",
            threshold=gate.threshold,
        )
    return _(
        "Customer information accuracy is %(accuracy)s %%, below the %(threshold)s %% "
        "recommended for analytics modules: their figures will be as good as the data. "
        "See Data quality.",
        accuracy=f"{gate.accuracy:.1f}",
        threshold=gate.threshold,
    )
