"""The platform's own screens and jobs: Modules, Settings, Job runs, Audit log, event dispatch."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from ..events.dispatch import dispatch_backlog
from ..events.models import EventDelivery, OutboxEvent
from ..hookimpl import hookimpl
from ..jobs.models import JobRun, SchedulerLease
from ..jobs.views import JobRunView
from ..security.audit import AuditLog
from ..security.models import RecordRule
from ..security.reveal import RevealView
from ..security.views import AuditLogApi, AuditLogView, RecordRuleView
from ..settings.api import SettingApi
from ..settings.models import Setting
from ..settings.views import SettingsView
from ..specs import ApiSpec, JobSpec, ViewSpec
from ..web.anchor_job import refresh_list_anchors
from ..web.pickers import RecordPickerView
from .models import PluginState
from .views import ModulesView

ADMIN = {
    "category": "Administration",
    "category_label": _l("Administration"),
    "category_icon": "fa-cogs",
}


@hookimpl
def register_models() -> list[type]:
    return [
        PluginState,
        Setting,
        OutboxEvent,
        EventDelivery,
        JobRun,
        SchedulerLease,
        AuditLog,
        RecordRule,
    ]


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(ModulesView, "Modules", _l("Modules"), icon="fa-puzzle-piece", **ADMIN),
        ViewSpec(SettingsView, "Settings", _l("Settings"), icon="fa-sliders-h", **ADMIN),
        ViewSpec(JobRunView, "Job runs", _l("Job runs"), icon="fa-history", **ADMIN),
        ViewSpec(AuditLogView, "Audit log", _l("Audit log"), icon="fa-user-secret", **ADMIN),
        ViewSpec(RecordRuleView, "Record rules", _l("Record rules"), icon="fa-filter", **ADMIN),
        ViewSpec(RevealView, "Sensitive fields", _l("Sensitive fields")),
        ViewSpec(RecordPickerView, "Record pickers"),
    ]


@hookimpl
def register_apis() -> list[ApiSpec]:
    return [ApiSpec(SettingApi, _l("Settings")), ApiSpec(AuditLogApi)]


def _dispatch_job(_app: Any) -> dict[str, int]:
    return {"events": dispatch_backlog()}


@hookimpl
def register_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            "core.dispatch_events",
            _dispatch_job,
            "interval",
            {"seconds": 30},
            title="Deliver domain events left pending",
        ),
        JobSpec(
            "core.list_anchors",
            refresh_list_anchors,
            "interval",
            {"minutes": 5},
            title="Measure page positions of big lists",
        ),
    ]
