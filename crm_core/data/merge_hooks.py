"""Duplicate review and merging of customers, registered like any module's features."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..hookimpl import hookimpl
from ..specs import EventTypeSpec, JobSpec, RoleSpec, ViewSpec
from .duplicate_pairs import JOB_ID, DuplicatePair, run_job
from .merge import EVENT
from .merge_views import DuplicatePairView

#: The menu entry (and its permission view), under 客户.
MENU = "Duplicate customers"
VIEW = "DuplicatePairView"


@hookimpl
def register_models() -> list[type]:
    return [DuplicatePair]


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(
            DuplicatePairView,
            MENU,
            _l("Duplicate customers"),
            icon="fa-clone",
            category="Customers",
            category_label=_l("Customers"),
            category_icon="fa-users",
        )
    ]


@hookimpl
def register_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            JOB_ID,
            run_job,
            "cron",
            {"hour": 3, "minute": 30},
            title="Find likely duplicate customers",
        )
    ]


@hookimpl
def register_event_types() -> list[EventTypeSpec]:
    return [EventTypeSpec(EVENT, _l("Customers merged"))]


@hookimpl
def register_roles() -> list[RoleSpec]:
    """Sales managers review and merge the duplicates of the customers they may write (Admin
    gets every permission anyway)."""
    permissions = (
        ("can_list", VIEW),
        ("can_merge", VIEW),
        ("can_find", VIEW),
        ("menu_access", MENU),
    )
    return [RoleSpec("Sales Manager", permissions)]
