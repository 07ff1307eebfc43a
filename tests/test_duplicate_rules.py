"""Duplicate rules: the same phone is refused, a similar name is saved with a warning, whoever
owns the record already there."""

from __future__ import annotations

from helpers import add_customer
from sqlalchemy import func, select

from crm_core.customers.models import Customer
from crm_core.db import session
from crm_core.lowcode.duplicates import DuplicateRule, similarity
from crm_core.testing.plugin import login_client, user_id

CUSTOMERS = "/api/v1/customer/"


def _rules(app) -> None:  # type: ignore[no-untyped-def]
    with app.app_context():
        session().add_all(
            [
                DuplicateRule(
                    model="Customer", name="电话相同", field="phone", method="exact", action="block"
                ),
                DuplicateRule(
                    model="Customer",
                    name="名称相似",
                    field="name",
                    method="fuzzy",
                    threshold=90,
                    action="warn",
                ),
            ]
        )
        session().commit()


def test_names_are_compared_without_legal_forms():
    assert similarity("上海华东精密机械有限公司", "上海华东精密机械股份有限公司") == 100
    assert similarity("上海华东精密机械有限公司", "上海华东精密机械（集团）") == 100
    assert similarity("上海华东精密机械有限公司", "上海华东精密电子有限公司") < 90
    assert similarity("Acme Co., Ltd.", "ACME Limited") == 100


def test_the_same_phone_is_refused_naming_the_customer_and_its_owner(app):
    _rules(app)
    add_customer(
        app,
        name="杭州西湖茶业有限公司",
        code="CDUP00001",
        phone="+8613812345678",
        owner_id=user_id(app, "Sales Manager"),
    )
    rep = login_client(app, "Sales Rep")  # a rep who cannot see that customer
    refused = rep.post(CUSTOMERS, json={"name": "西湖茶叶", "phone": "138 1234 5678"})
    assert refused.status_code == 422
    (message,) = refused.get_json()["message"]["phone"]
    assert "杭州西湖茶业有限公司（CDUP00001）" in message and "t_manager" in message
    with app.app_context():
        assert session().scalar(select(func.count()).select_from(Customer)) == 1


def test_a_similar_name_is_saved_with_a_warning(app, admin_client):
    _rules(app)
    add_customer(app, name="上海华东精密机械有限公司", code="CDUP00002")
    made = admin_client.post(CUSTOMERS, json={"name": "上海华东精密机械股份有限公司"})
    assert made.status_code == 201
    (warning,) = made.get_json()["warnings"]
    assert warning == "疑似重复：上海华东精密机械有限公司（CDUP00002）。"
    other = admin_client.post(CUSTOMERS, json={"name": "深圳南山云图科技有限公司"})
    assert "warnings" not in other.get_json()

    page = admin_client.post(
        "/customers/add",
        data={"name": "上海华东精密机械集团", "kind": "company", "code": ""},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "上海华东精密机械有限公司（CDUP00002）" in page  # flashed on the next page


def test_editing_other_fields_does_not_recheck_and_archived_records_do_not_count(app, admin_client):
    _rules(app)
    first = add_customer(app, name="宁波港口物流有限公司", phone="+8657487001234")
    second = add_customer(app, name="宁波港口物流有限公司", code="CDUP00003")
    assert admin_client.put(f"{CUSTOMERS}{second}", json={"city": "宁波市"}).status_code == 200
    admin_client.delete(f"{CUSTOMERS}{first}")  # archived
    again = admin_client.post(CUSTOMERS, json={"name": "宁波新客户", "phone": "0574-87001234"})
    assert again.status_code == 201, again.get_json()
