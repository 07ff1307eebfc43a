"""Login protection and API keys, registered through the same hooks as any plugin: their
tables, the Login security and API keys screens, the settings and the clean-up job."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..hookimpl import hookimpl
from ..specs import JobSpec, SettingSpec, ViewSpec
from . import lockout
from .api_key_views import ApiKeyView
from .login_models import LoginFailure, LoginLock
from .login_views import LoginLockView
from .passwords import DEFAULT_MIN_LENGTH, MIN_LENGTH


@hookimpl
def register_models() -> list[type]:
    return [LoginLock, LoginFailure]


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(
            LoginLockView,
            "Login security",
            _l("Login security"),
            category="Security",
            category_label=_l("Security"),
            icon="fa-user-lock",
            category_icon="fa-cogs",
        ),
        ViewSpec(
            ApiKeyView,
            "API keys",
            _l("API keys"),
            category="Security",
            category_label=_l("Security"),
            icon="fa-key",
            category_icon="fa-cogs",
        ),
    ]


@hookimpl
def register_settings() -> list[SettingSpec]:
    return [
        SettingSpec(
            lockout.LOCK_AFTER,
            10,
            "int",
            label=_l("Wrong passwords in a row that lock an account"),
            help=_l("0 never locks an account."),
        ),
        SettingSpec(
            lockout.LOCK_MINUTES,
            30,
            "int",
            label=_l("Minutes a locked account stays locked"),
            help=_l("An administrator can unlock it sooner on the Login security screen."),
        ),
        SettingSpec(
            lockout.IP_LIMIT,
            50,
            "int",
            label=_l("Failed logins from one IP address that block further logins from it"),
            help=_l("Counted within the window below; 0 turns the limit off."),
        ),
        SettingSpec(
            lockout.IP_WINDOW,
            15,
            "int",
            label=_l("Window of the IP address limit, in minutes"),
        ),
        SettingSpec(
            MIN_LENGTH,
            DEFAULT_MIN_LENGTH,
            "int",
            label=_l("Minimum password length"),
            help=_l("Passwords also need letters and digits and must differ from the user name."),
        ),
    ]


@hookimpl
def register_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            "core.prune_login_failures",
            lockout.prune,
            "interval",
            {"minutes": 30},
            title="Forget old failed logins",
        )
    ]
