"""The inbox page (收件箱), the user's notification settings (通知设置) and the REST API."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, protect, safe
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ...db import session
from ...errors import FieldError
from ...web.display import display_datetime
from . import inbox
from .models import Notification, NotificationPreference
from .notify import DEFAULT_CHANNELS, KINDS, channels

#: Permission view names (the roles' permission sets name them).
INBOX = "Inbox"
PREFERENCES = "Notification settings"


def _int_arg(name: str) -> int | None:
    """A position argument (``before``): none, or a whole number in range; anything else is
    refused naming the argument."""
    value = request.args.get(name, "")
    if value == "":
        return None
    if not value.isascii() or not value.isdigit() or int(value) >= 2**31:
        raise FieldError({name: [_("Enter a whole number.")]})
    return int(value)


def _safe_next(url: str | None) -> str | None:
    """Only links inside the CRM are followed after marking read."""
    if url and url.startswith("/") and not url.startswith("//"):
        return url
    return None


class InboxView(BaseView):
    """``/notifications/``: the signed-in user's notifications, newest first."""

    route_base = "/notifications"
    default_view = "list"
    class_permission_name = INBOX
    method_permission_name = {"list": "list", "read": "list", "read_all": "list"}

    @expose("/")
    @has_access
    def list(self):  # type: ignore[no-untyped-def]
        try:
            before = _int_arg("before")
        except FieldError:
            flash(_("Enter a whole number."), "danger")
            before = None
        unread_only = request.args.get("unread") == "1"
        rows = inbox.page(session(), int(current_user.id), before, unread_only)
        more = len(rows) == inbox.PAGE_SIZE
        return self.render_template(
            "crm/notifications/inbox.html",
            rows=rows,
            kinds=KINDS,
            unread_only=unread_only,
            next_before=rows[-1].id if more else None,
            when=display_datetime,
        )

    @expose("/<int:pk>/read", methods=["POST"])
    @has_access
    def read(self, pk: int):  # type: ignore[no-untyped-def]
        uid = int(current_user.id)
        inbox.mark_read(session(), uid, pk)
        session().commit()
        row = session().scalar(
            select(Notification).where(Notification.id == pk, Notification.user_id == uid)
        )
        target = _safe_next(row.url) if row is not None and request.form.get("open") else None
        return redirect(target or request.referrer or url_for("InboxView.list"))

    @expose("/read", methods=["POST"])
    @has_access
    def read_all(self):  # type: ignore[no-untyped-def]
        count = inbox.mark_read(session(), int(current_user.id))
        session().commit()
        flash(_("%(count)s notifications marked read", count=count), "success")
        return redirect(url_for("InboxView.list"))


def offered_channels() -> list[tuple[str, Any]]:
    """Channels a user may choose now: offered and set up by an admin."""
    return [(name, spec.label) for name, spec in channels().items() if spec.configured()]


def preferences_of(user_id: int | None) -> dict[str, list[str]]:
    """The chosen channels per kind of a user (or with ``None``, the site defaults), with
    what applies where nothing was chosen."""
    rows = session().scalars(
        select(NotificationPreference).where(
            NotificationPreference.user_id.is_(None)
            if user_id is None
            else NotificationPreference.user_id.in_([user_id])
        )
    )
    chosen = {r.kind: list(r.channels) for r in rows}
    if user_id is not None:
        site = preferences_of(None)
        return {k: chosen.get(k, site[k]) for k in KINDS}
    return {k: chosen.get(k, DEFAULT_CHANNELS.get(k, [])) for k in KINDS}


def save_preferences(user_id: int | None, form: Any, allowed: list[str]) -> None:
    """Store the ticked channels per kind (``<kind>:<channel>`` boxes); the caller commits."""
    rows = {
        r.kind: r
        for r in session().scalars(
            select(NotificationPreference).where(
                NotificationPreference.user_id.is_(None)
                if user_id is None
                else NotificationPreference.user_id == user_id
            )
        )
    }
    for kind in KINDS:
        picked = [c for c in allowed if form.get(f"{kind}:{c}")]
        row = rows.get(kind)
        if row is None:
            session().add(NotificationPreference(user_id=user_id, kind=kind, channels=picked))
        elif row.channels != picked:
            row.channels = picked


class PreferencesView(BaseView):
    """``/notifications/settings/``: which channels the user gets per kind of notification."""

    route_base = "/notifications/settings"
    default_view = "edit"
    class_permission_name = PREFERENCES
    method_permission_name = {"edit": "edit", "save": "edit"}

    @expose("/")
    @has_access
    def edit(self):  # type: ignore[no-untyped-def]
        return self.render_template(
            "crm/notifications/preferences.html",
            kinds=KINDS,
            offered=offered_channels(),
            chosen=preferences_of(int(current_user.id)),
            action=url_for("PreferencesView.save"),
            title=_("Notification settings"),
        )

    @expose("/", methods=["POST"])
    @has_access
    def save(self):  # type: ignore[no-untyped-def]
        allowed = [name for name, _label in offered_channels()]
        save_preferences(int(current_user.id), request.form, allowed)
        session().commit()
        flash(_("Notification settings saved"), "success")
        return redirect(url_for("PreferencesView.edit"))


def _as_json(row: Notification) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "title": row.title,
        "body": row.body or "",
        "url": row.url,
        "source": row.source or "",
        "record_model": row.record_model,
        "record_id": row.record_id,
        "created_at": row.created_at.isoformat(),
        "read_at": row.read_at.isoformat() if row.read_at else None,
    }


class NotificationApi(BaseApi):
    """``/api/v1/notification/``: the caller's notifications, and marking them read."""

    resource_name = "notification"
    openapi_spec_tag = "Notifications"
    method_permission_name = {"get_list": "get", "read": "post", "read_all": "post"}

    @expose("/", methods=["GET"])
    @protect(allow_browser_login=True)
    @safe
    def get_list(self):  # type: ignore[no-untyped-def]
        """The caller's notifications, newest first, ``PAGE_SIZE`` at a time.
        ---
        get:
          parameters:
          - {in: query, name: before, schema: {type: integer}}
          - {in: query, name: unread, schema: {type: integer}}
          responses:
            200: {description: "result: the notifications; unread: count; next_before"}
        """
        uid = int(self.appbuilder.sm.current_user.id)  # session or JWT
        try:
            before = _int_arg("before")
        except FieldError as exc:
            return self.response_400(message=exc.messages)
        rows = inbox.page(session(), uid, before, request.args.get("unread") == "1")
        more = len(rows) == inbox.PAGE_SIZE
        return self.response(
            200,
            result=[_as_json(r) for r in rows],
            unread=inbox.unread_count(session(), uid),
            next_before=rows[-1].id if more else None,
        )

    @expose("/<int:pk>/read", methods=["POST"])
    @protect(allow_browser_login=True)
    @safe
    def read(self, pk: int):  # type: ignore[no-untyped-def]
        """Mark one of the caller's notifications read (404 when it is not theirs).
        ---
        post:
          responses:
            200: {description: "unread: the caller's unread count"}
            404: {description: no such notification of the caller}
        """
        uid = int(self.appbuilder.sm.current_user.id)  # session or JWT
        row = session().scalar(
            select(Notification).where(Notification.id == pk, Notification.user_id == uid)
        )
        if row is None:
            return self.response_404()
        inbox.mark_read(session(), uid, pk)
        session().commit()
        return self.response(200, unread=inbox.unread_count(session(), uid))

    @expose("/read", methods=["POST"])
    @protect(allow_browser_login=True)
    @safe
    def read_all(self):  # type: ignore[no-untyped-def]
        """Mark all the caller's notifications read.
        ---
        post:
          responses:
            200: {description: "marked: how many; unread: 0"}
        """
        uid = int(self.appbuilder.sm.current_user.id)  # session or JWT
        marked = inbox.mark_read(session(), uid)
        session().commit()
        return self.response(200, marked=marked, unread=0)
