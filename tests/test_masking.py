"""Sensitive fields: masked for roles that may not read them, revealed one by one with an audit
entry, and never overwritten by a masked value sent back."""

from __future__ import annotations

import re

import pytest
from helpers import add_customer
from sqlalchemy import select

from crm_core.customers.models import Contact, Customer
from crm_core.db import session
from crm_core.security.audit import AuditLog
from crm_core.security.masking import mask
from crm_core.testing.plugin import login_client, user_id


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        ("phone", "+8613812345678", "138****5678"),
        ("phone", "+8675586001234", "755****1234"),  # a Shenzhen landline
        ("phone", "+14155550123", "+1 415****0123"),
        ("email", "zhang.wei@example.cn", "z****@example.cn"),
        ("id", "310101199001011234", "3101****1234"),
        ("text", "wxid_abc123", "w****"),
        ("phone", None, None),
        ("email", "", ""),
    ],
)
def test_mask(kind, value, shown):
    assert mask(kind, value) == shown


@pytest.fixture
def customer(app) -> int:
    rep = user_id(app, "Sales Rep")
    pk = add_customer(
        app, name="无锡新吴恒远电子有限公司", owner_id=rep, phone="13812345678", email="li@hy.cn"
    )
    with app.app_context():
        session().add(Contact(customer_id=pk, name="李娜", mobile="13987654321"))
        session().commit()
    return pk


def test_rep_reads_masked_values_everywhere(app, customer):
    rep = login_client(app, "Sales Rep")
    item = rep.get(f"/api/v1/customer/{customer}").get_json()["result"]
    assert (item["phone"], item["email"]) == ("138****5678", "l****@hy.cn")
    listed = rep.get("/api/v1/customer/").get_json()["result"]
    assert [row["phone"] for row in listed] == ["138****5678"]
    assert rep.get("/api/v1/contact/").get_json()["result"][0]["mobile"] == "139****4321"
    html = rep.get("/customers/list/").get_data(as_text=True)
    assert "138****5678" in html and "13812345678" not in html and "138 1234 5678" not in html
    page = rep.get(f"/customer/{customer}").get_data(as_text=True)
    assert "139****4321" in page and "139 8765 4321" not in page
    # a masked column left empty (李娜 has no e-mail) is an empty cell, not the word None
    contacts = rep.get("/contacts/list/").get_data(as_text=True)
    assert "李娜" in contacts and "139****4321" in contacts and ">None<" not in contacts


@pytest.mark.parametrize("role", ["Admin", "Integration"])
def test_roles_with_full_access_read_stored_values(app, customer, role):
    client = login_client(app, role)
    item = client.get(f"/api/v1/customer/{customer}").get_json()["result"]
    assert item["phone"] == "+8613812345678"


def test_reveal_shows_one_value_and_is_audited(app, customer):
    rep = login_client(app, "Sales Rep")
    page = rep.get(f"/customer/{customer}").get_data(as_text=True)
    url = f"/sensitive/Customer/{customer}/phone"
    assert url in page
    answer = rep.post(url, headers={"Accept": "application/json"})
    assert answer.status_code == 200
    assert answer.get_json() == {"value": "+8613812345678", "display": "138 1234 5678"}
    with app.app_context():
        entry = session().scalar(select(AuditLog).where(AuditLog.operation == "reveal"))
        assert (entry.model, entry.record_id, entry.user_id) == (
            "customer",
            customer,
            user_id(app, "Sales Rep"),
        )
        assert list(entry.changes) == ["phone"]
    # Not a sensitive field, not a model, or a record the rep may not see: 404.
    other = add_customer(app, name="常州武进另一家有限公司", owner_id=user_id(app, "Admin"))
    for bad in (
        f"/sensitive/Customer/{customer}/name",
        f"/sensitive/Nothing/{customer}/phone",
        f"/sensitive/Customer/{other}/phone",
    ):
        assert rep.post(bad, headers={"Accept": "application/json"}).status_code == 404, bad


def test_roles_without_reveal_see_no_link_and_cannot_reveal(app, customer):
    analyst = login_client(app, "Analyst")
    page = analyst.get(f"/customer/{customer}").get_data(as_text=True)
    assert "138****5678" in page and "/sensitive/" not in page
    answer = analyst.post(f"/sensitive/Customer/{customer}/phone")
    assert answer.status_code in (302, 403)
    assert "+8613812345678" not in answer.get_data(as_text=True)


def test_masked_values_sent_back_keep_the_stored_ones(app, customer):
    rep = login_client(app, "Sales Rep")
    form = rep.get(f"/customers/edit/{customer}").get_data(as_text=True)
    assert re.search(r'name="phone"[^>]*value="138\*\*\*\*5678"', form) or re.search(
        r'value="138\*\*\*\*5678"[^>]*name="phone"', form
    )
    code = re.search(r'name="code"[^>]*value="([^"]+)"', form) or re.search(
        r'value="([^"]+)"[^>]*name="code"', form
    )
    assert code is not None
    saved = rep.post(
        f"/customers/edit/{customer}",
        data={
            "name": "无锡新吴恒远电子有限公司",
            "kind": "company",
            "code": code.group(1),
            "phone": "138****5678",
            "email": "l****@hy.cn",
            "city": "无锡市",
        },
        follow_redirects=True,
    )
    assert saved.status_code == 200
    put = rep.put(f"/api/v1/customer/{customer}", json={"phone": "138****5678", "city": "苏州市"})
    assert put.status_code == 200, put.get_json()
    with app.app_context():
        stored = session().get(Customer, customer)
        assert (stored.phone, stored.email, stored.city) == ("+8613812345678", "li@hy.cn", "苏州市")
    # A new value is a change like any other.
    changed = rep.put(f"/api/v1/customer/{customer}", json={"phone": "13911112222"})
    assert changed.status_code == 200
    with app.app_context():
        assert session().get(Customer, customer).phone == "+8613911112222"


def test_the_history_of_a_masked_field_is_masked_too(app):
    from crm_core.testing.plugin import login_client

    rep = login_client(app, "Sales Rep")
    made = rep.post("/api/v1/customer/", json={"name": "镇江京口醋业", "phone": "13812345678"})
    pk = made.get_json()["id"]
    changed = rep.put(f"/api/v1/customer/{pk}", json={"phone": "13987654321"})
    assert changed.status_code == 200
    history = rep.get(f"/customer/{pk}").get_data(as_text=True).split('id="crm-history"')[1]
    assert "138****5678 &rarr; 139****4321" in history
    assert "13812345678" not in history and "13987654321" not in history
