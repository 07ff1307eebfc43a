"""Where the channels' settings live.

Plain settings (SMTP server, port, sender, site address) are declared settings: they show on
the Settings screen and travel in configuration bundles. Secrets (the SMTP password and the
robots' webhook addresses, which carry their access tokens) are stored in the same settings
table but declared nowhere, so neither the Settings screen nor a bundle ever shows them; only
the Notification channels screen writes them, and it never shows them back.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from ...db import session
from ...settings.models import Setting
from ...settings.store import get_setting
from ...specs import SettingSpec

PREFIX = "notifications."
OWNER = "core"
#: Secret settings, by short name.
SECRETS = (
    "smtp_password",
    "wecom_webhook",
    "dingtalk_webhook",
    "dingtalk_secret",
    "feishu_webhook",
)
SECURITY = ("none", "starttls", "ssl")


def setting_specs() -> list[SettingSpec]:
    """The channels' plain settings."""
    return [
        SettingSpec(PREFIX + "smtp_host", "", label=_l("SMTP server")),
        SettingSpec(PREFIX + "smtp_port", 25, "int", label=_l("SMTP port")),
        SettingSpec(
            PREFIX + "smtp_security",
            "none",
            label=_l("SMTP encryption"),
            help=_l("none, starttls or ssl"),
        ),
        SettingSpec(PREFIX + "smtp_user", "", label=_l("SMTP user name")),
        SettingSpec(PREFIX + "smtp_sender", "", label=_l("Sender address of notification e-mails")),
        SettingSpec(
            PREFIX + "site_url",
            "",
            label=_l("Site address in notifications"),
            help=_l(
                "e.g. https://crm.example.cn; links in e-mails and robot messages start with it"
            ),
        ),
        SettingSpec(
            PREFIX + "timeout", 10, "int", label=_l("Time-out of a notification delivery (seconds)")
        ),
    ]


def channel_setting(name: str) -> Any:
    """A plain channel setting by short name (``smtp_host``)."""
    return get_setting(PREFIX + name)


def secret(name: str) -> str | None:
    """A secret channel setting by short name, or ``None`` when it is not set."""
    row = session().get(Setting, PREFIX + name)
    return str(row.value) if row is not None and row.value else None


def set_secret(name: str, value: str | None) -> None:
    """Store (or with an empty value, clear) a secret; the caller commits."""
    if name not in SECRETS:
        raise KeyError(name)
    row = session().get(Setting, PREFIX + name)
    if row is None:
        if value:
            session().add(Setting(key=PREFIX + name, value=value, plugin=OWNER))
    elif value:
        row.value = value
    else:
        session().delete(row)
