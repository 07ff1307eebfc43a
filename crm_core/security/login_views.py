"""Screens and APIs of login protection: the login form and the JWT login with their refusal
messages, password forms that state the policy, and the admins' Login security screen."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, url_for
from flask_appbuilder import ModelView
from flask_appbuilder.actions import action
from flask_appbuilder.api import expose as expose_api
from flask_appbuilder.api import safe
from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.forms import ResetPasswordForm
from flask_appbuilder.security.views import (
    AuthDBView,
    ResetMyPasswordView,
    ResetPasswordView,
    UserDBModelView,
)
from flask_appbuilder.validators import PasswordComplexityValidator
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from wtforms import PasswordField, validators
from wtforms.validators import EqualTo

from ..db import session, utcnow
from ..web.crud import CrmInterface
from ..web.display import display_datetime
from . import lockout
from .login_models import LoginLock
from .names import roles_text
from .passwords import POLICY_HINT

#: Flask-AppBuilder's answer to a wrong name or password; the same for unknown names.
INVALID_LOGIN = _l("Invalid login. Please try again.")


class CrmAuthDBView(AuthDBView):
    """The login form; a refused login says why (locked account, too many failures from the
    address) instead of the usual wrong-password message."""

    @property  # type: ignore[misc]
    def invalid_login_message(self) -> str:
        refusal = lockout.current_refusal()
        return refusal.message if refusal is not None else str(INVALID_LOGIN)


class CrmSecurityApi(SecurityApi):
    """``/api/v1/security/login``: a locked account answers 401 with the lock message, an
    address with too many failures 429 with ``Retry-After``."""

    @expose_api("/login", methods=["POST"])
    @safe
    def login(self) -> Response:
        """Log in with a user name and password and get a JWT access (and refresh) token.
        ---
        post:
          description: >-
            Authenticate and get a JWT access and refresh token. After too many wrong
            passwords the account is locked for a while, and an address with too many failed
            logins is refused for a while.
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    username:
                      type: string
                    password:
                      type: string
                    provider:
                      type: string
                      enum:
                      - db
                    refresh:
                      type: boolean
          responses:
            200:
              description: Authentication Successful
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      access_token:
                        type: string
                      refresh_token:
                        type: string
            400:
              $ref: '#/components/responses/400'
            401:
              $ref: '#/components/responses/401'
            429:
              description: Too many failed logins from this address; see Retry-After
        """
        response: Response = super().login()
        refusal = lockout.current_refusal()
        if refusal is None or response.status_code != 401:
            return response
        refused: Response = self.response(refusal.status, message=refusal.message)
        if refusal.status == 429:
            refused.headers["Retry-After"] = str(refusal.minutes * 60)
        return refused


def _password_field(label: Any) -> PasswordField:
    return PasswordField(
        label,
        description=POLICY_HINT,
        validators=[validators.DataRequired(), PasswordComplexityValidator()],
        widget=BS3PasswordFieldWidget(),
    )


class CrmResetPasswordForm(ResetPasswordForm):
    """Flask-AppBuilder's reset form, describing the policy it checks."""

    password = _password_field(_l("Password"))


class CrmResetMyPasswordView(ResetMyPasswordView):
    form = CrmResetPasswordForm


class CrmResetPasswordView(ResetPasswordView):
    form = CrmResetPasswordForm


class CrmUserDBModelView(UserDBModelView):
    """Flask-AppBuilder's user screens, describing the password policy on the add form and
    showing roles by their labels."""

    formatters_columns = {"roles": roles_text}

    add_form_extra_fields = {
        **UserDBModelView.add_form_extra_fields,
        "password": _password_field(_l("Password")),
        "conf_password": PasswordField(
            _l("Confirm Password"),
            description=_l("Please rewrite the user's password to confirm"),
            validators=[
                validators.DataRequired(),
                EqualTo("password", message=_l("Passwords must match")),
            ],
            widget=BS3PasswordFieldWidget(),
        ),
    }


def _locked_until(value: Any) -> Markup | str:
    """The end of a lock still running; nothing for a lock that is over."""
    if value is None or value <= utcnow():
        return ""
    return Markup('<span class="label label-danger">{}</span>').format(display_datetime(value))


class LoginLockView(ModelView):
    """``/loginsecurity/``: names with wrong passwords, locked accounts first to see, and the
    Unlock action (audited)."""

    datamodel = CrmInterface(LoginLock)
    route_base = "/loginsecurity"
    list_title = _l("Login security")
    show_title = _l("Failed logins of an account")
    base_permissions = ["can_list", "can_show"]
    label_columns = {
        "account": _l("Account name"),
        "user": _l("User"),
        "failures": _l("Wrong passwords in a row"),
        "last_failure_at": _l("Last failed login"),
        "last_failure_ip": _l("From IP address"),
        "locked_at": _l("Locked at"),
        "locked_until": _l("Locked until"),
    }
    description_columns = {
        "user": _l("Empty when no user has this name: unknown names are counted too."),
    }
    list_columns = [
        "account",
        "user",
        "failures",
        "last_failure_at",
        "last_failure_ip",
        "locked_until",
    ]
    show_columns = [*list_columns[:-1], "locked_at", "locked_until"]
    search_columns = ["account", "last_failure_ip", "last_failure_at", "locked_until"]
    order_columns = ["account", "failures", "last_failure_at", "locked_until"]
    formatters_columns = {
        "last_failure_at": display_datetime,
        "locked_at": display_datetime,
        "locked_until": _locked_until,
    }
    base_order = ("last_failure_at", "desc")

    @action(
        "unlock",
        _l("Unlock account"),
        _l("Unlock the selected accounts?"),
        "fa-unlock",
    )
    def unlock(self, items: Any) -> Any:
        chosen = [i for i in (items if isinstance(items, list) else [items]) if i is not None]
        lifted = lockout.unlock(chosen)
        session().commit()
        flash(gettext("Accounts unlocked: %(count)s", count=lifted), "success")
        return redirect(url_for(f"{self.endpoint}.list"))
