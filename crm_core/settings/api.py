"""``/api/v1/setting/``: read and change settings over the API."""

from __future__ import annotations

from flask import current_app, request
from flask_appbuilder.api import BaseApi, expose, protect, safe
from flask_babel import lazy_gettext as _l

from ..db import session
from .store import get_setting, set_setting


def _as_dict(key: str) -> dict[str, object]:
    registry = current_app.extensions["crm"]
    spec = registry.settings[key]
    return {
        "key": key,
        "value": get_setting(key),
        "default": spec.default,
        "type": spec.type,
        "label": str(spec.label or key),
        "module": registry.setting_owner[key],
    }


class SettingApi(BaseApi):
    """Settings declared by the core and enabled plugins."""

    resource_name = "setting"
    allow_browser_login = True
    openapi_spec_tag = "Settings"

    def _visible(self, key: str) -> bool:
        registry = current_app.extensions["crm"]
        return key in registry.settings and registry.is_enabled(registry.setting_owner[key])

    @expose("/", methods=["GET"])
    @protect()
    @safe
    def get_list(self):  # type: ignore[no-untyped-def]
        """Every setting with its value and default.
        ---
        get:
          responses:
            200:
              description: The settings
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      result:
                        type: array
                        items:
                          type: object
        """
        keys = sorted(k for k in current_app.extensions["crm"].settings if self._visible(k))
        return self.response(200, result=[_as_dict(k) for k in keys])

    @expose("/<key>", methods=["PUT"])
    @protect()
    @safe
    def put(self, key: str):  # type: ignore[no-untyped-def]
        """Change one setting.
        ---
        put:
          parameters:
          - in: path
            schema:
              type: string
            name: key
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    value: {}
          responses:
            200:
              description: The setting after the change
            400:
              $ref: '#/components/responses/400'
            404:
              $ref: '#/components/responses/404'
            422:
              $ref: '#/components/responses/422'
        """
        if not self._visible(key):
            return self.response_404()
        body = request.get_json(silent=True) if request.is_json else None
        if not isinstance(body, dict) or "value" not in body:
            message = _l("Send a JSON object with the new value")
            return self.response(400, message={"value": [str(message)]})
        try:
            set_setting(key, body["value"])
            session().commit()
        except ValueError as exc:
            session().rollback()
            return self.response(422, message={"value": [str(exc)]})
        return self.response(200, result=_as_dict(key))
