"""Small helpers shared by the core's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
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


def crm_process(app: Flask, workdir: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """A ``crm`` command on the test app's database, as an operator would run it (``env``
    adds ``CRM_*`` settings); its output is text on ``stdout``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "FLASK_"))}
    clean.update(
        CRM_DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        CRM_INSTANCE_DIR=str(workdir / "instance"),
        CRM_FILES_DIR=app.config["CRM_FILES_DIR"],
        CRM_HOOKS_DIR=str(workdir / "no-hooks"),
        CRM_PLUGINS="",
        CRM_SECRET_KEY="test-secret",
        COLUMNS="200",
        **env,
    )
    crm = Path(sys.executable).with_name("crm")
    return subprocess.Popen(
        [str(crm), *args],
        env=clean,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
