"""The public API: :func:`notify`, and which channels each user gets for each kind.

Other modules (approvals, assignment and automation rules, plugins) call ``notify`` inside
their own transaction; the inbox rows commit with their change, and the deliveries to e-mail
and robots go out after commit, each retried on its own (:mod:`.delivery`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ...errors import FieldError
from ...events.outbox import emit
from ...specs import ChannelSpec
from .channels import INBOX
from .models import Notification, NotificationDelivery, NotificationPreference

#: The event that carries a notify call's deliveries to the dispatcher.
EVENT = "notification.queued"
#: Kinds other modules use, with their labels on the preferences page; any other kind works
#: too and follows the site default of ``info``.
KINDS = {
    "info": _l("General"),
    "assignment": _l("Assignment"),
    "approval": _l("Approval"),
    "mention": _l("Mention"),
    "reminder": _l("Reminder"),
    "automation": _l("Automation rule"),
}
#: Channels besides the inbox when neither the user nor an admin chose.
DEFAULT_CHANNELS: dict[str, list[str]] = {"approval": ["email"], "assignment": ["email"]}
TITLE_LENGTH = 200


def channels() -> dict[str, ChannelSpec]:
    """The sending channels offered now: those of the core and of enabled plugins."""
    registry = current_app.extensions["crm"]
    found = current_app.extensions.get("crm_notification_channels", {})
    return {name: spec for name, (owner, spec) in found.items() if registry.is_enabled(owner)}


def channels_for(session: Session, user_ids: list[int], kind: str) -> dict[int, list[str]]:
    """Which sending channels each user gets for ``kind`` (one query): the user's own choice,
    else the admin's site default, else :data:`DEFAULT_CHANNELS`, among the channels that are
    set up. The inbox always."""
    lookup = kind if kind in KINDS else "info"
    rows = session.scalars(
        select(NotificationPreference).where(
            NotificationPreference.kind == lookup,
            or_(
                NotificationPreference.user_id.in_(user_ids),
                NotificationPreference.user_id.is_(None),
            ),
        )
    ).all()
    site = next((r.channels for r in rows if r.user_id is None), None)
    own = {r.user_id: r.channels for r in rows if r.user_id is not None}
    fallback = DEFAULT_CHANNELS.get(lookup, []) if site is None else site
    # A channel the administrator has not set up (no SMTP server) is not queued at all.
    offered = {name for name, spec in channels().items() if spec.configured()}
    return {
        uid: [c for c in own.get(uid, fallback) if c in offered and c != INBOX] for uid in user_ids
    }


def _user_ids(users: Any) -> list[int]:
    if isinstance(users, int) or hasattr(users, "id"):
        users = [users]
    out: list[int] = []
    for user in users if isinstance(users, Iterable) else [users]:
        uid = user if isinstance(user, int) else getattr(user, "id", None)
        if not isinstance(uid, int):
            raise FieldError({"users": [str(_l("%(value)s is not a user", value=repr(user)))]})
        if uid not in out:
            out.append(uid)
    return out


def notify(
    session: Session,
    users: Any,
    title: str,
    body: str = "",
    *,
    url: str | None = None,
    kind: str = "info",
    source: str = "",
    record: Any = None,
) -> list[Notification]:
    """Notify ``users`` (user objects or ids, or one of either): one inbox row each, added to
    ``session``'s transaction, and a delivery to every other channel each user wants for
    ``kind`` (e-mail, robots), sent after commit and retried with back-off on failure.

    ``url`` is the link shown with the notification (a path inside the CRM such as
    ``/customers/show/7``); ``source`` names the module or rule that notified; ``record``
    (any model instance with an ``id``) is remembered as the record it is about. Returns the
    inbox rows, flushed. Nothing is sent when the caller rolls back.
    """
    title = (title or "").strip()
    if not title:
        raise FieldError({"title": [str(_l("A notification needs a title."))]})
    ids = _user_ids(users)
    if not ids:
        return []
    record_model = type(record).__name__ if record is not None else None
    record_id = getattr(record, "id", None) if record is not None else None
    rows = [
        Notification(
            user_id=uid,
            kind=kind[:30],
            title=title[:TITLE_LENGTH],
            body=body or "",
            url=url,
            source=source[:80] if source else "",
            record_model=record_model,
            record_id=record_id,
        )
        for uid in ids
    ]
    session.add_all(rows)
    wants = channels_for(session, ids, kind)
    queued = False
    for row in rows:
        for channel in wants.get(row.user_id, []):
            session.add(NotificationDelivery(notification=row, channel=channel))
            queued = True
    session.flush()
    if queued:
        emit(session, EVENT, {"notifications": [row.id for row in rows]})
    return rows
