"""Admin screens: the channels' settings and site defaults, and the delivery log."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...db import session
from ...settings.store import set_setting
from ...web.crud import CrmInterface
from ...web.display import display_datetime
from .config import PREFIX, SECRETS, SECURITY, channel_setting, secret, set_secret
from .models import NotificationDelivery
from .notify import KINDS, channels
from .views import preferences_of, save_preferences

#: Plain settings on this screen, with their labels.
PLAIN = {
    "smtp_host": _l("SMTP server"),
    "smtp_port": _l("SMTP port"),
    "smtp_security": _l("SMTP encryption"),
    "smtp_user": _l("SMTP user name"),
    "smtp_sender": _l("Sender address of notification e-mails"),
    "site_url": _l("Site address in notifications"),
    "timeout": _l("Time-out of a notification delivery (seconds)"),
}
SECRET_LABELS = {
    "smtp_password": _l("SMTP password"),
    "wecom_webhook": _l("WeChat Work robot webhook address"),
    "dingtalk_webhook": _l("DingTalk robot webhook address"),
    "dingtalk_secret": _l("DingTalk robot signing secret"),
    "feishu_webhook": _l("Feishu robot webhook address"),
}
STATUS_LABELS = {"pending": _l("Waiting to retry"), "done": _l("Sent"), "failed": _l("Failed")}


def _status(value: str) -> str:
    return str(STATUS_LABELS.get(value, value))


def _problems(form: Any) -> list[str]:
    """What is wrong with the submitted values, each naming its field."""
    out = []
    for key in ("smtp_port", "timeout"):
        value = form.get(key, "").strip()
        if not value.isdigit() or not 0 < int(value) <= (65535 if key == "smtp_port" else 300):
            out.append(_("%(field)s: enter a whole number in range", field=PLAIN[key]))
    if form.get("smtp_security", "none") not in SECURITY:
        out.append(_("%(field)s: choose none, starttls or ssl", field=PLAIN["smtp_security"]))
    site = form.get("site_url", "").strip()
    if site and not site.startswith(("http://", "https://")):
        out.append(_("%(field)s: must start with http:// or https://", field=PLAIN["site_url"]))
    for key in ("wecom_webhook", "dingtalk_webhook", "feishu_webhook"):
        value = form.get(key, "").strip()
        if value and not value.startswith(("http://", "https://")):
            out.append(
                _("%(field)s: must start with http:// or https://", field=SECRET_LABELS[key])
            )
    return out


class ChannelsView(BaseView):
    """``/notification-channels/``: SMTP and robot settings, and which channels each kind of
    notification uses when a user has not chosen. Secrets are never shown back."""

    route_base = "/notification-channels"
    default_view = "edit"
    class_permission_name = "Notification channels"
    method_permission_name = {"edit": "edit", "save": "edit"}

    def _render(self, values: dict[str, Any]):  # type: ignore[no-untyped-def]
        offered = [(name, spec.label) for name, spec in channels().items()]
        return self.render_template(
            "crm/notifications/channels.html",
            plain=PLAIN,
            values=values,
            security=SECURITY,
            secrets=SECRET_LABELS,
            is_set={key: bool(secret(key)) for key in SECRETS},
            kinds=KINDS,
            offered=offered,
            chosen=preferences_of(None),
        )

    @expose("/")
    @has_access
    def edit(self):  # type: ignore[no-untyped-def]
        return self._render({key: channel_setting(key) for key in PLAIN})

    @expose("/", methods=["POST"])
    @has_access
    def save(self):  # type: ignore[no-untyped-def]
        form = request.form
        problems = _problems(form)
        if problems:
            for problem in problems:
                flash(problem, "danger")
            return self._render({key: form.get(key, "") for key in PLAIN}), 422
        for key in PLAIN:
            set_setting(PREFIX + key, form.get(key, "").strip())
        for key in SECRETS:
            value = form.get(key, "").strip()
            if form.get(f"clear:{key}"):
                set_secret(key, None)
            elif value:  # an empty box keeps the stored secret
                set_secret(key, value)
        save_preferences(None, form, list(channels()))
        session().commit()
        flash(_("Notification channels saved"), "success")
        return redirect(url_for("ChannelsView.edit"))


class DeliveryLogView(ModelView):
    """Every delivery of a notification to e-mail or a robot, newest first, with its outcome,
    attempts and last error."""

    datamodel = CrmInterface(NotificationDelivery)
    route_base = "/notification-deliveries"
    list_title = _l("Notification deliveries")
    show_title = _l("Notification delivery")
    base_permissions = ["can_list", "can_show"]
    label_columns = {
        "notification": _l("Notification"),
        "channel": _l("Channel"),
        "status": _l("Status"),
        "attempts": _l("Attempts"),
        "last_error": _l("Last error"),
        "created_at": _l("Created"),
        "last_attempt_at": _l("Last attempt"),
        "delivered_at": _l("Delivered"),
    }
    list_columns = [
        "notification",
        "channel",
        "status",
        "attempts",
        "last_attempt_at",
        "last_error",
    ]
    show_columns = [*list_columns, "created_at", "delivered_at"]
    search_columns = ["channel", "status", "created_at"]
    base_order = ("id", "desc")
    formatters_columns = {
        "status": _status,
        "created_at": display_datetime,
        "last_attempt_at": display_datetime,
        "delivered_at": display_datetime,
    }
