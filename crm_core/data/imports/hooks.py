"""Imports, registered like any module's parts."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ...hookimpl import hookimpl
from ...specs import JobSpec, RoleSpec, ViewSpec
from .models import ImportJob, ImportProblem
from .resume import resume_abandoned
from .views import ImportView

MENU = "Imports"
VIEW = "ImportView"


@hookimpl
def register_models() -> list[type]:
    return [ImportJob, ImportProblem]


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(
            ImportView,
            MENU,
            _l("Imports"),
            icon="fa-upload",
            category="Customers",
            category_label=_l("Customers"),
            category_icon="fa-users",
        )
    ]


@hookimpl
def register_roles() -> list[RoleSpec]:
    """Sales staff import records in their own rights: the rows they may not write are
    refused one by one (Admin gets every permission anyway)."""
    permissions = (("can_list", VIEW), ("can_add", VIEW), ("menu_access", MENU))
    return [RoleSpec("Sales Manager", permissions), RoleSpec("Sales Rep", permissions)]


@hookimpl
def register_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            "core.imports",
            resume_abandoned,
            "interval",
            {"minutes": 1},
            title="Finish imports whose process stopped",
        )
    ]
