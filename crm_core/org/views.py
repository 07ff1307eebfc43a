"""Screens and APIs for teams and user profiles."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..web.crud import CrmInterface, CrmModelRestApi, CrmModelView
from .models import Team, UserProfile
from .tree import refresh_paths


class TeamView(CrmModelView):
    """Departments (部门) as a tree."""

    datamodel = CrmInterface(Team)
    route_base = "/teams"
    list_title = _l("Teams")
    show_title = _l("Team")
    add_title = _l("Add team")
    edit_title = _l("Edit team")
    label_columns = {
        "name": _l("Name"),
        "parent": _l("Parent team"),
        "manager": _l("Manager"),
        "region": _l("Region"),
        "path": _l("Path"),
    }
    list_columns = ["name", "parent", "manager", "region"]
    add_columns = edit_columns = ["name", "parent", "manager", "region"]
    show_columns = ["name", "parent", "manager", "region"]
    search_columns = ["name", "parent", "region"]

    def post_add(self, item: Team) -> None:
        refresh_paths()

    def post_update(self, item: Team) -> None:
        refresh_paths()


class UserProfileView(CrmModelView):
    """Which team each user belongs to and who their manager is."""

    datamodel = CrmInterface(UserProfile)
    route_base = "/profiles"
    list_title = _l("User profiles")
    show_title = _l("User profile")
    add_title = _l("Add user profile")
    edit_title = _l("Edit user profile")
    label_columns = {
        "user": _l("User"),
        "team": _l("Team"),
        "manager": _l("Manager"),
        "phone": _l("Phone"),
        "title": _l("Job title"),
    }
    list_columns = add_columns = edit_columns = show_columns = [
        "user",
        "team",
        "manager",
        "phone",
        "title",
    ]
    search_columns = ["user", "team", "manager"]


class TeamApi(CrmModelRestApi):
    """``/api/v1/team/``."""

    resource_name = "team"
    datamodel = CrmInterface(Team)
    list_columns = show_columns = ["id", "name", "parent_id", "manager_id", "region", "path"]
    add_columns = edit_columns = ["name", "parent_id", "manager_id", "region"]

    def post_add(self, item: Team) -> None:
        refresh_paths()

    def post_update(self, item: Team) -> None:
        refresh_paths()


class UserProfileApi(CrmModelRestApi):
    """``/api/v1/userprofile/``: each user's team, manager, phone and title."""

    resource_name = "userprofile"
    datamodel = CrmInterface(UserProfile)
    list_columns = show_columns = ["id", "user_id", "team_id", "manager_id", "phone", "title"]
    add_columns = edit_columns = ["user_id", "team_id", "manager_id", "phone", "title"]
