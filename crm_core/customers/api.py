"""REST APIs for customers, contacts and tags, and the pool actions."""

from __future__ import annotations

from flask import g
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.security.decorators import permission_name

from ..web.crud import CrmInterface, CrmModelRestApi, default_owner
from . import pool
from .models import Contact, Customer, Tag, new_customer_code
from .search import CONTACT_PREFIX_SEARCH, CUSTOMER_PREFIX_SEARCH

#: The customer columns the API writes (and a merge chooses between, less code and custom).
CUSTOMER_WRITE = [
    "code",
    "name",
    "kind",
    "phone",
    "email",
    "website",
    "province",
    "city",
    "district",
    "address",
    "industry",
    "source",
    "tier",
    "lifecycle_stage",
    "uscc",
    "credit_limit",
    "owner_id",
    "team_id",
    "notes",
    "custom",
]


class CustomerApi(CrmModelRestApi):
    """``/api/v1/customer/``: customers, with claim and release for the shared pool."""

    resource_name = "customer"
    datamodel = CrmInterface(Customer, prefix_search=CUSTOMER_PREFIX_SEARCH)
    list_columns = [
        "id",
        "code",
        "name",
        "kind",
        "phone",
        "email",
        "province",
        "city",
        "industry",
        "source",
        "tier",
        "owner_id",
        "team_id",
        "custom",
        "updated_at",
        "version",
    ]
    show_columns = [
        "id",
        *CUSTOMER_WRITE,
        "active",
        "last_activity_at",
        "created_at",
        "updated_at",
        "version",
    ]
    add_columns = CUSTOMER_WRITE
    edit_columns = CUSTOMER_WRITE
    search_columns = [
        "code",
        "name",
        "phone",
        "email",
        "city",
        "industry",
        "source",
        "tier",
        "owner_id",
        "team_id",
        "updated_at",
        "active",
    ]
    order_columns = ["id", "code", "name", "updated_at"]
    base_order = ("id", "asc")
    anchor_orders = (("name", "asc"),)  # deep pages by name jump from stored anchors
    base_filters = [["active", FilterEqual, True]]
    post_defaults = {"code": new_customer_code}

    def pre_add(self, item: Customer) -> None:
        default_owner(item)

    def _pool_action(self, pk: int, action: str):  # type: ignore[no-untyped-def]
        act = pool.claim if action == "claim" else pool.release
        return self.record_action(
            pk,
            lambda item: act(item, g.user),
            lambda item: {"id": item.id, "owner_id": item.owner_id},
        )

    @expose("/<int:pk>/claim", methods=["POST"])
    @protect()
    @safe
    @permission_name("claim")
    def claim(self, pk: int):  # type: ignore[no-untyped-def]
        """Claim a customer from the shared pool.
        ---
        post:
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          responses:
            200:
              description: The customer now belongs to the caller
            404:
              $ref: '#/components/responses/404'
            409:
              description: The customer already has an owner
        """
        return self._pool_action(pk, "claim")

    @expose("/<int:pk>/release", methods=["POST"])
    @protect()
    @safe
    @permission_name("release")
    def release(self, pk: int):  # type: ignore[no-untyped-def]
        """Return a customer to the shared pool.
        ---
        post:
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          responses:
            200:
              description: The customer is in the pool
            404:
              $ref: '#/components/responses/404'
            409:
              description: The customer is already in the pool
        """
        return self._pool_action(pk, "release")


class ContactApi(CrmModelRestApi):
    """``/api/v1/contact/``."""

    resource_name = "contact"
    datamodel = CrmInterface(Contact, prefix_search=CONTACT_PREFIX_SEARCH)
    _fields = [
        "customer_id",
        "name",
        "title",
        "role",
        "mobile",
        "phone",
        "email",
        "wechat",
        "birthday",
        "notes",
        "custom",
    ]
    list_columns = ["id", *_fields, "updated_at", "version"]
    show_columns = ["id", *_fields, "active", "created_at", "updated_at", "version"]
    add_columns = edit_columns = _fields
    search_columns = ["customer_id", "name", "mobile", "email", "updated_at"]
    base_filters = [["active", FilterEqual, True]]
    base_order = ("id", "asc")


class TagApi(CrmModelRestApi):
    """``/api/v1/tag/``."""

    resource_name = "tag"
    datamodel = CrmInterface(Tag)
    list_columns = show_columns = ["id", "name", "color"]
    add_columns = edit_columns = ["name", "color"]
