"""The gadget screen and its REST API."""

from __future__ import annotations

from crm_core import CrmInterface, CrmModelRestApi, CrmModelView

from .models import Gadget


class GadgetView(CrmModelView):
    """``/gadgets/list/``."""

    route_base = "/gadgets"
    datamodel = CrmInterface(Gadget)
    list_columns = ["name", "customer", "active"]
    show_columns = ["name", "customer", "active", "created_at", "updated_at"]
    add_columns = edit_columns = ["name", "customer"]


class GadgetApi(CrmModelRestApi):
    """``/api/v1/gadget/``."""

    resource_name = "gadget"
    datamodel = CrmInterface(Gadget)
    list_columns = ["id", "name", "customer_id", "custom", "active", "updated_at", "version"]
    show_columns = [
        "id",
        "name",
        "customer_id",
        "custom",
        "active",
        "created_at",
        "updated_at",
        "version",
    ]
    add_columns = edit_columns = ["name", "customer_id", "custom"]
