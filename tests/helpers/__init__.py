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
