"""Teams and user profiles."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..hookimpl import hookimpl
from ..specs import ApiSpec, ViewSpec
from .models import Team, UserProfile
from .views import TeamApi, TeamView, UserProfileApi, UserProfileView


@hookimpl
def register_models() -> list[type]:
    return [Team, UserProfile]


@hookimpl
def register_views() -> list[ViewSpec]:
    menu = {
        "category": "Organisation",
        "category_label": _l("Organisation"),
        "category_icon": "fa-sitemap",
    }
    return [
        ViewSpec(TeamView, "Teams", _l("Teams"), icon="fa-sitemap", **menu),
        ViewSpec(UserProfileView, "User profiles", _l("User profiles"), icon="fa-id-card", **menu),
    ]


@hookimpl
def register_apis() -> list[ApiSpec]:
    return [ApiSpec(TeamApi), ApiSpec(UserProfileApi)]
