"""Small helpers shared by the core's tests."""

from __future__ import annotations

from typing import Any

from flask import Flask

from crm_core.customers.models import Customer
from crm_core.db import session


def add_customer(app: Flask, **fields: Any) -> int:
    """Write a customer straight through the ORM and return its id."""
    with app.app_context():
        customer = Customer(**fields)
        session().add(customer)
        session().commit()
        return customer.id


def define_field(admin_client: Any, **form: str) -> None:
    """Define a custom field on the admin screen (Customer unless ``model`` is given)."""
    data = {"model": "Customer", "position": "10", "active": "y", **form}
    page = admin_client.post("/customfields/add", data=data, follow_redirects=True)
    assert page.status_code == 200
    # Saved: the form redirects to the list; refused, it is shown again with its errors.
    assert page.request.path != "/customfields/add", page.get_data(as_text=True)[-2000:]
