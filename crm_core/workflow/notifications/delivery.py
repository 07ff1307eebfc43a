"""Sending the deliveries of a ``notify`` call, after commit.

``notify`` writes a ``notification.queued`` event to the outbox with its inbox rows; the event
dispatcher (:mod:`crm_core.events.dispatch`: right after the request, or the scheduler's
dispatch job) hands it to :func:`deliver_event`. Each delivery is tried on its own: one that
fails keeps its error and the attempt count, the others are sent, and the handler raises so
the dispatcher calls it again with its back-off; what was sent is never sent twice. After
``MAX_ATTEMPTS`` a delivery is marked failed; the Notification deliveries screen shows each
one with its last error.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...db import utcnow
from ...events.dispatch import MAX_ATTEMPTS
from ...org.display import display_user
from ...specs import Event
from .channels import DeliveryError, Message, PermanentDeliveryError
from .config import channel_setting
from .models import Notification, NotificationDelivery
from .notify import EVENT, channels

log = logging.getLogger(__name__)


def message_for(notification: Notification) -> Message:
    """What the channels send for one inbox row."""
    url = notification.url
    site = (channel_setting("site_url") or "").rstrip("/")
    if url and site and url.startswith("/"):
        url = site + url
    user: Any = notification.user
    return Message(
        recipient=display_user(user) or getattr(user, "username", ""),
        email=getattr(user, "email", None) or None,
        kind=notification.kind,
        title=notification.title,
        body=notification.body or "",
        url=url,
    )


def deliver(notification_ids: list[int]) -> int:
    """Try every pending delivery of these notifications once, each committed on its own
    (in a session of its own, never the caller's); returns how many are still pending."""
    engine = current_app.appbuilder.session.get_bind()  # type: ignore[attr-defined]
    offered = channels()
    pending = 0
    with Session(engine, expire_on_commit=False) as session:
        rows = session.scalars(
            select(NotificationDelivery)
            .where(
                NotificationDelivery.notification_id.in_(notification_ids),
                NotificationDelivery.status == "pending",
            )
            .order_by(NotificationDelivery.id)
        ).all()
        session.commit()
        for delivery in rows:
            if not _attempt(delivery, offered):
                pending += 1
            session.commit()
    return pending


def _attempt(delivery: NotificationDelivery, offered: dict[str, Any]) -> bool:
    """One attempt; ``False`` when the delivery is to be tried again."""
    delivery.attempts += 1
    delivery.last_attempt_at = utcnow()
    spec = offered.get(delivery.channel)
    try:
        if spec is None or spec.send is None:
            raise DeliveryError(f"the channel {delivery.channel!r} is not available")
        spec.send(message_for(delivery.notification))
    except PermanentDeliveryError as exc:
        delivery.status = "failed"
        delivery.last_error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one channel never stops another
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:4000]
        log.warning(
            "notification delivery %s (%s) failed, attempt %s: %s",
            delivery.id,
            delivery.channel,
            delivery.attempts,
            delivery.last_error,
        )
        if delivery.attempts < MAX_ATTEMPTS:
            return False
        delivery.status = "failed"
    else:
        delivery.status = "done"
        delivery.delivered_at = utcnow()
        delivery.last_error = None
    return True


def deliver_event(event: Event) -> None:
    """The ``on_event`` handler: deliver a ``notification.queued`` event's deliveries, and
    raise while some are still to be retried, so the dispatcher backs off and calls again."""
    if event.type != EVENT:
        return
    ids = [int(i) for i in event.payload.get("notifications") or []]
    left = deliver(ids)
    if left:
        raise DeliveryError(f"{left} notification deliveries failed and will be retried")
