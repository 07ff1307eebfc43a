"""Assignment rules, registered like any module's: models, the admin screen, the time-zone
setting and the bundle section."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from ...hookimpl import hookimpl
from ...specs import SettingSpec, ViewSpec
from .config import SECTIONS
from .hours import DEFAULT_TIMEZONE, TIMEZONE_SETTING
from .models import AssignmentRule, AssignmentTurn
from .views import AssignmentRuleView


@hookimpl
def register_models() -> list[type]:
    return [AssignmentRule, AssignmentTurn]


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(
            AssignmentRuleView,
            "Assignment rules",
            _l("Assignment rules"),
            icon="fa-random",
            category="Administration",
            category_label=_l("Administration"),
            category_icon="fa-cogs",
        )
    ]


@hookimpl
def register_settings() -> list[SettingSpec]:
    return [
        SettingSpec(
            TIMEZONE_SETTING,
            DEFAULT_TIMEZONE,
            "str",
            label=_l("Time zone of assignment rules' working hours"),
            help=_l("A zone name such as Asia/Shanghai."),
        )
    ]


@hookimpl
def register_config_sections() -> list[Any]:
    return list(SECTIONS)
