"""Automation rules, registered like any module's: tables, the admin screen, the job that
retries failed runs and runs timed rules, the core's actions, the bundle section, and the
``on_event`` that runs rules after commit."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l

from ...hookimpl import hookimpl
from ...specs import ActionSpec, Event, JobSpec, ViewSpec
from . import actions, engine, timed
from .admin_views import AutomationRuleView
from .builtin import BUILTIN
from .bundle import SECTION
from .models import AutomationClock, AutomationRule, AutomationRuleVersion, AutomationRun

JOB_ID = "core.automation"


@hookimpl
def register_models() -> list[type]:
    return [AutomationRule, AutomationRuleVersion, AutomationRun, AutomationClock]


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(
            AutomationRuleView,
            "Automation rules",
            _l("Automation rules"),
            icon="fa-bolt",
            category="Administration",
            category_label=_l("Administration"),
            category_icon="fa-cogs",
        )
    ]


def _job(_app: Any) -> dict[str, int]:
    return {**engine.retry_due(), **timed.run_timed()}


@hookimpl
def register_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            JOB_ID,
            _job,
            "interval",
            {"minutes": 1},
            title="Retry failed automation runs and run timed automation rules",
        )
    ]


@hookimpl
def register_automation_actions() -> list[ActionSpec]:
    return list(BUILTIN)


@hookimpl
def register_config_sections() -> list[Any]:
    return [SECTION]


@hookimpl
def on_event(event: Event) -> None:
    engine.on_event(event)


@hookimpl
def app_configured(app: Flask) -> None:
    actions.collect(app)
