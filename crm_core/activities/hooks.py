"""Follow-ups: screens, API and their share of the customer timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..db import session
from ..hookimpl import hookimpl
from ..specs import ApiSpec, EventTypeSpec, TimelineEntry, ViewSpec
from .models import Activity
from .views import KIND_LABELS, ActivityApi, ActivityView


@hookimpl
def register_models() -> list[type]:
    return [Activity]


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(
            ActivityView,
            "Follow-ups",
            _l("Follow-ups"),
            category="Customers",
            category_label=_l("Customers"),
            icon="fa-phone",
        )
    ]


@hookimpl
def register_apis() -> list[ApiSpec]:
    return [ApiSpec(ActivityApi)]


@hookimpl
def register_event_types() -> list[EventTypeSpec]:
    return [EventTypeSpec("activity.created", _l("Follow-up recorded"))]


@hookimpl
def customer_timeline(customer: Any, since: datetime | None, limit: int) -> list[TimelineEntry]:
    query = (
        select(Activity)
        .where(Activity.customer_id == customer.id, Activity.active.is_(True))
        .order_by(Activity.occurred_at.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(Activity.occurred_at >= since)
    return [
        TimelineEntry(
            when=a.occurred_at,
            kind=str(KIND_LABELS.get(a.kind, a.kind)),
            title=a.subject,
            body=a.body or "",
            url=url_for("ActivityView.show", pk=a.id),
        )
        for a in session().scalars(query)
    ]
