"""Data quality, registered like any module: its table, page, job, settings and permissions."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..hookimpl import hookimpl
from ..specs import JobSpec, RoleSpec, SettingSpec, ViewSpec
from .quality import (
    FIELDS,
    READINESS_DEFAULT,
    READINESS_SETTING,
    WEIGHT_SETTING,
    DataQuality,
    run_job,
)
from .quality_views import DataQualityView

JOB_ID = "core.data_quality"


@hookimpl
def register_models() -> list[type]:
    return [DataQuality]


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(
            DataQualityView,
            "Data quality",
            _l("Data quality"),
            icon="fa-check-double",
            category="Customers",
            category_label=_l("Customers"),
        )
    ]


@hookimpl
def register_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            JOB_ID,
            run_job,
            "interval",
            {"minutes": 10},
            title="Score the data quality of changed customers",
        )
    ]


@hookimpl
def register_settings() -> list[SettingSpec]:
    gate = SettingSpec(
        READINESS_SETTING,
        READINESS_DEFAULT,
        "int",
        label=_l("Accuracy (percent) from which analytics modules are recommended"),
        help=_l("The Modules page recommends phase-2 modules from this accuracy on."),
    )
    return [gate] + [
        SettingSpec(
            WEIGHT_SETTING.format(f.key),
            f.weight,
            "int",
            label=_l("Data-quality weight: %(field)s", field=f.label),
            help=_l("How much this field counts for a customer's completeness; 0 ignores it."),
        )
        for f in FIELDS
    ]


@hookimpl
def register_roles() -> list[RoleSpec]:
    """Sales and analysts see the page, with the figures of the customers they may read;
    recomputing at once is for administrators."""
    see = (("can_list", "DataQualityView"), ("menu_access", "Data quality"))
    return [RoleSpec(role, see) for role in ("Sales Manager", "Sales Rep", "Analyst")]
