"""``/api/v1/_openapi`` without the paths of disabled plugins."""

from __future__ import annotations

from flask import current_app
from flask_appbuilder.api import BaseApi, expose, protect, safe
from flask_appbuilder.api.manager import OpenApi, SwaggerView
from flask_appbuilder.security.decorators import permission_name


class CrmOpenApi(OpenApi):
    """The OpenAPI document, built per request from the APIs that are live now."""

    class_permission_name = "OpenApi"

    @expose("/<version>/_openapi")
    @protect()
    @safe
    @permission_name("get")
    def get(self, version: str):  # type: ignore[no-untyped-def]
        """The OpenAPI document of one API version.
        ---
        get:
          description: The OpenAPI document of the APIs that are enabled now
          parameters:
          - in: path
            schema:
              type: string
            name: version
          responses:
            200:
              description: The OpenAPI document
              content:
                application/json:
                  schema:
                    type: object
            404:
              $ref: '#/components/responses/404'
        """
        registry = current_app.extensions["crm"]
        api_spec = self._create_api_spec(version)
        found = False
        for base_api in current_app.appbuilder.baseviews:  # type: ignore[attr-defined]
            if not isinstance(base_api, BaseApi) or base_api.version != version:
                continue
            owner = registry.owner_of_endpoint.get(base_api.endpoint, "core")
            if registry.is_enabled(owner):
                base_api.add_api_spec(api_spec)
                found = True
        if not found:
            return self.response_404()
        return self.response(200, **api_spec.to_dict())


def register(appbuilder: object) -> None:
    """Add the filtered OpenAPI endpoint and the Swagger UI."""
    appbuilder.add_api(CrmOpenApi)  # type: ignore[attr-defined]
    appbuilder.add_view_no_menu(SwaggerView)  # type: ignore[attr-defined]
