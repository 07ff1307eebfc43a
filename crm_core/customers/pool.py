"""The shared pool (公海): reps claim unowned customers, release their own, and customers with
no follow-up for N days go back to the pool."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..db import session, utcnow
from ..errors import ConflictError, FieldError, VetoError
from ..events.outbox import emit
from ..security import rules
from ..settings.store import get_setting
from .models import Customer

RECLAIM_DAYS = "pool.reclaim_days"
RECLAIM_BATCH = 500


def claim(customer: Customer, user: Any) -> None:
    """Make ``user`` the owner of a pooled customer (领取); caller commits."""
    if customer.owner_id is not None:
        raise ConflictError({"owner_id": [str(_l("This customer already has an owner"))]})
    if not customer.active:
        raise FieldError({"active": [str(_l("Archived customers cannot be claimed"))]})
    customer.owner_id = user.id
    customer.pooled_at = None
    rules.grant(session(), customer)  # checked above: a pooled customer the user can see
    customer.last_activity_at = utcnow()
    emit(session(), "customer.claimed", {"id": customer.id, "owner_id": user.id})


def release(customer: Customer, user: Any) -> None:
    """Return a customer to the pool (退回公海); only its owner or an admin may; caller commits."""
    is_admin = current_app.config["AUTH_ROLE_ADMIN"] in {r.name for r in user.roles}
    if customer.owner_id is None:
        raise ConflictError({"owner_id": [str(_l("This customer is already in the pool"))]})
    if customer.owner_id != user.id and not is_admin:
        raise FieldError({"owner_id": [str(_l("Only the owner can release this customer"))]})
    previous = customer.owner_id
    customer.owner_id = None
    rules.grant(session(), customer)  # checked above: the owner (or an admin) releases it
    customer.pooled_at = utcnow()
    emit(session(), "customer.released", {"id": customer.id, "previous_owner_id": previous})


def reclaim_idle(_app: Any = None) -> dict[str, int]:
    """Return to the pool every owned customer with no activity for the configured days.

    Works in batches by id so a million customers never load at once; each batch commits.
    A customer a module refuses to change (``validate_change``: one waiting for an approval)
    keeps its owner and is counted as ``kept``.
    """
    days = int(get_setting(RECLAIM_DAYS))
    if days <= 0:
        return {"reclaimed": 0}
    cutoff = utcnow() - timedelta(days=days)
    s = session()
    reclaimed = kept = 0
    last_id = 0
    while True:
        batch = s.scalars(
            select(Customer)
            .where(
                Customer.id > last_id,
                Customer.owner_id.is_not(None),
                Customer.active.is_(True),
                func.coalesce(Customer.last_activity_at, Customer.created_at) < cutoff,
            )
            .order_by(Customer.id)
            .limit(RECLAIM_BATCH)
        ).all()
        if not batch:
            break
        last_id = batch[-1].id
        try:
            for customer in batch:
                _release_idle(s, customer)
            s.flush()
        except VetoError:
            # A module keeps one of them (a customer waiting for an approval is locked):
            # release the others one by one and leave the kept ones with their owners.
            s.rollback()
            released = 0
            for customer in s.scalars(
                select(Customer).where(Customer.id.in_([c.id for c in batch]))
            ).all():
                try:
                    with s.begin_nested():
                        _release_idle(s, customer)
                    released += 1
                except VetoError:
                    kept += 1
            reclaimed += released
        else:
            reclaimed += len(batch)
        s.commit()
    return {"reclaimed": reclaimed, "kept": kept}


def _release_idle(s: Any, customer: Customer) -> None:
    previous = customer.owner_id
    customer.owner_id = None
    customer.pooled_at = utcnow()
    emit(
        s, "customer.released", {"id": customer.id, "previous_owner_id": previous, "reason": "idle"}
    )
