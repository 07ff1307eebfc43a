"""Reading and marking a user's inbox: indexed queries on (user, id) and (user, read_at)."""

from __future__ import annotations

from flask import g
from flask_login import current_user
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ...db import session as request_session
from ...db import utcnow
from .models import Notification

PAGE_SIZE = 30


def page(
    session: Session, user_id: int, before: int | None = None, unread_only: bool = False
) -> list[Notification]:
    """Up to ``PAGE_SIZE`` notifications of a user, newest first, older than id ``before``
    (keyset paging: as fast on the thousandth page as on the first)."""
    query = select(Notification).where(Notification.user_id == user_id)
    if before is not None:
        query = query.where(Notification.id < before)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(PAGE_SIZE)))


def unread_count(session: Session, user_id: int) -> int:
    """How many notifications of a user are unread."""
    query = select(func.count(Notification.id)).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    return int(session.scalar(query) or 0)


def mark_read(session: Session, user_id: int, notification_id: int | None = None) -> int:
    """Mark one notification of a user (or, with no id, all) read; how many changed.
    Another user's notification is never touched. The caller commits."""
    stmt = (
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    if notification_id is not None:
        stmt = stmt.where(Notification.id == notification_id)
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


def navbar_unread() -> int | None:
    """The signed-in user's unread count for the navbar bell, queried once per request;
    ``None`` for a visitor who is not signed in."""
    if not getattr(current_user, "is_authenticated", False):
        return None
    if "crm_unread" not in g:
        g.crm_unread = unread_count(request_session(), int(current_user.id))
    return int(g.crm_unread)
