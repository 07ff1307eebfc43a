"""The admins' API keys screen: list keys with their last use, make one (shown once), revoke."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, make_response, redirect, request, url_for
from flask_appbuilder import ModelView
from flask_appbuilder.actions import action
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget, Select2Widget
from flask_appbuilder.forms import DynamicForm
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from flask_appbuilder.security.sqla.models import ApiKey
from flask_appbuilder.views import expose
from flask_appbuilder.widgets import FormWidget
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, NumberRange, Optional

from ..db import session
from ..web.display import display_datetime
from .api_keys import ApiKeyError, create_key, revoke, role_names
from .names import role_label


class ApiKeyForm(DynamicForm):
    name = StringField(
        _l("Key name"),
        validators=[DataRequired()],
        widget=BS3TextFieldWidget(),
        description=_l("What the key is for, such as the system that uses it."),
    )
    user = SelectField(_l("User"), coerce=int, widget=Select2Widget())
    role = SelectField(
        _l("Role"),
        widget=Select2Widget(),
        description=_l("The key may do only what this role of the user may do."),
    )
    days = IntegerField(
        _l("Valid for days"),
        validators=[Optional(), NumberRange(min=1)],
        widget=BS3TextFieldWidget(),
        description=_l("Leave empty for a key that is valid until it is revoked."),
    )


def _status(revoked_on: Any) -> str:
    return gettext("Revoked %(when)s", when=display_datetime(revoked_on)) if revoked_on else ""


class ApiKeyView(ModelView):
    """``/apikeys/``: every key with its user, role and last use; Revoke stops a key at once."""

    datamodel = SQLAInterface(ApiKey)
    route_base = "/apikeys"
    list_title = _l("API keys")
    show_title = _l("API key")
    add_title = _l("New API key")
    base_permissions = ["can_list", "can_show", "can_add"]
    label_columns = {
        "name": _l("Key name"),
        "user": _l("User"),
        "scopes": _l("Role"),
        "created_on": _l("Created on"),
        "expires_on": _l("Expires on"),
        "last_used_on": _l("Last used on"),
        "revoked_on": _l("Revoked on"),
    }
    list_columns = [
        "name",
        "user",
        "scopes",
        "created_on",
        "expires_on",
        "last_used_on",
        "revoked_on",
    ]
    show_columns = list_columns
    search_columns = ["name", "user", "scopes", "last_used_on", "revoked_on"]
    formatters_columns = {
        "created_on": display_datetime,
        "expires_on": display_datetime,
        "last_used_on": display_datetime,
        "revoked_on": _status,
        "scopes": role_label,
    }
    base_order = ("id", "desc")

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self) -> Any:
        """Make a key; the page that follows shows it once."""
        form = ApiKeyForm(request.form)
        sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
        users = sorted((u for u in sm.get_all_users() if u.active), key=lambda u: u.username)
        form.user.choices = [(u.id, u.username) for u in users]
        form.role.choices = [(name, role_label(name)) for name in role_names()]
        if request.method == "POST" and form.validate():
            user = sm.get_user_by_id(form.user.data)
            try:
                key, raw = create_key(user, form.role.data, form.name.data, form.days.data)
            except ApiKeyError as exc:
                form.role.errors = [*form.role.errors, str(exc)]
            else:
                session().commit()
                shown = make_response(
                    self.render_template(
                        "crm/api_key_created.html", key=key, raw=raw, appbuilder=self.appbuilder
                    )
                )
                shown.headers["Cache-Control"] = "no-store"  # the key must not stay in a cache
                return shown
        widget = FormWidget(form=form, include_cols=["name", "user", "role", "days"])
        return self.render_template(
            self.add_template,
            title=self.add_title,
            widgets={"add": widget},
            appbuilder=self.appbuilder,
        )

    @action("revoke", _l("Revoke key"), _l("Revoke the selected keys?"), "fa-ban")
    def revoke_keys(self, items: Any) -> Any:
        chosen = [i for i in (items if isinstance(items, list) else [items]) if i is not None]
        revoked = sum(revoke(key) for key in chosen)
        session().commit()
        flash(gettext("Keys revoked: %(count)s", count=revoked), "success")
        return redirect(url_for(f"{self.endpoint}.list"))
