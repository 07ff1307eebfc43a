"""Custom fields: admins define them on a screen; every write checks and normalises values."""

from __future__ import annotations

import pytest
from helpers import add_customer
from helpers import define_field as _define
from sqlalchemy import select

from crm_core.customers.models import Customer
from crm_core.db import session
from crm_core.lowcode.fields import FieldDefinition
from crm_core.testing.plugin import login_client, user_id

CUSTOMERS = "/api/v1/customer/"


@pytest.fixture
def fields(app, admin_client) -> None:
    """微信号 (text), 客户等级 (choice), 年采购预算 (money, at least 0), set on the screen."""
    _define(admin_client, name="wechat_id", kind="text", label_zh="微信号", unique="y")
    _define(
        admin_client,
        name="level",
        kind="choice",
        label_zh="客户等级",
        choices="A|A 级客户\nB|B 级客户\nC|C 级客户",
        default="C",
    )
    _define(admin_client, name="budget", kind="money", label_zh="年采购预算", min_value="0")
    with app.app_context():
        names = session().scalars(select(FieldDefinition.name)).all()
    assert sorted(names) == ["budget", "level", "wechat_id"]


def test_values_are_checked_normalised_and_defaulted(app, admin_client, fields):
    created = admin_client.post(
        CUSTOMERS,
        json={
            "name": "青岛崂山海润食品有限公司",
            "custom": {"wechat_id": " hr_qd ", "budget": "1200.5"},
        },
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["result"]["custom"] == {
        "wechat_id": "hr_qd",
        "budget": "1200.50",
        "level": "C",  # the default of a field left out
    }


@pytest.mark.parametrize(
    ("custom", "field", "message"),
    [
        ({"level": "Z"}, "custom.level", "不是可选值之一"),
        ({"budget": "-1"}, "custom.budget", "不能小于"),
        ({"budget": "很多"}, "custom.budget", "请输入数字"),
        ({"nickname": "x"}, "custom.nickname", "没有这个字段"),
    ],
)
def test_a_wrong_value_is_a_field_error_in_chinese(admin_client, fields, custom, field, message):
    answer = admin_client.post(CUSTOMERS, json={"name": "烟台芝罘测试有限公司", "custom": custom})
    assert answer.status_code == 422
    errors = answer.get_json()["message"]
    assert list(errors) == [field] and message in errors[field][0]


def test_put_merges_custom_values_and_null_removes_one(app, admin_client, fields):
    created = admin_client.post(
        CUSTOMERS,
        json={"name": "威海环翠远洋渔业有限公司", "custom": {"wechat_id": "yy_wh", "level": "A"}},
    )
    pk = created.get_json()["id"]
    changed = admin_client.put(f"{CUSTOMERS}{pk}", json={"custom": {"level": "B", "budget": None}})
    assert changed.status_code == 200, changed.get_json()
    with app.app_context():
        assert session().get(Customer, pk).custom == {"wechat_id": "yy_wh", "level": "B"}


def test_unique_values_are_unique(admin_client, fields):
    first = admin_client.post(CUSTOMERS, json={"name": "甲公司", "custom": {"wechat_id": "same"}})
    assert first.status_code == 201
    second = admin_client.post(CUSTOMERS, json={"name": "乙公司", "custom": {"wechat_id": "same"}})
    assert second.status_code == 422
    assert "custom.wechat_id" in second.get_json()["message"]


def test_a_field_made_required_later_leaves_older_records_writable(app, admin_client, fields):
    pk = add_customer(app, name="潍坊奎文老客户有限公司")
    with app.app_context():
        budget = session().scalar(select(FieldDefinition).where(FieldDefinition.name == "budget"))
        budget.required = True
        session().commit()
    assert admin_client.put(f"{CUSTOMERS}{pk}", json={"city": "潍坊市"}).status_code == 200
    new = admin_client.post(CUSTOMERS, json={"name": "潍坊新客户有限公司"})
    assert new.status_code == 422 and "custom.budget" in new.get_json()["message"]


def test_a_deactivated_field_keeps_its_values(app, admin_client, fields):
    created = admin_client.post(CUSTOMERS, json={"name": "淄博张店", "custom": {"wechat_id": "zb"}})
    pk = created.get_json()["id"]
    with app.app_context():
        wechat = session().scalar(
            select(FieldDefinition).where(FieldDefinition.name == "wechat_id")
        )
        wechat.active = False
        session().commit()
    assert admin_client.put(f"{CUSTOMERS}{pk}", json={"city": "淄博市"}).status_code == 200
    refused = admin_client.put(f"{CUSTOMERS}{pk}", json={"custom": {"wechat_id": "zb2"}})
    assert refused.status_code == 422
    with app.app_context():
        assert session().get(Customer, pk).custom["wechat_id"] == "zb"


def test_a_customer_field_offers_only_customers_the_user_may_see(app, admin_client):
    _define(admin_client, name="parent_company", kind="customer", label_zh="母公司")
    hidden = add_customer(app, name="日照东港别人的客户", owner_id=user_id(app, "Admin"))
    own = add_customer(app, name="日照东港自己的客户", owner_id=user_id(app, "Sales Rep"))
    rep = login_client(app, "Sales Rep")
    body = {"name": "日照岚山子公司", "custom": {"parent_company": hidden}}
    assert rep.post(CUSTOMERS, json=body).status_code == 422
    body["custom"]["parent_company"] = own
    assert rep.post(CUSTOMERS, json=body).status_code == 201


def test_the_screen_refuses_bad_definitions(app, admin_client):
    page = admin_client.post(
        "/customfields/add",
        data={
            "model": "Customer",
            "name": "Bad Key",
            "kind": "choice",
            "label_zh": "坏",
            "position": "1",
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "只能使用" in page and "至少需要一个选项" in page
    with app.app_context():
        assert session().scalar(select(FieldDefinition)) is None


@pytest.mark.parametrize(
    ("model", "api", "body"),
    [
        ("Contact", "/api/v1/contact/", {"name": "孙丽"}),
        ("Activity", "/api/v1/activity/", {"subject": "展会回访"}),
    ],
)
def test_contacts_and_follow_ups_take_custom_fields_too(app, admin_client, model, api, body):
    _define(
        admin_client,
        model=model,
        name="decision_level",
        kind="choice",
        label_zh="决策层级",
        choices="high|高层\nmid|中层",
    )
    customer = add_customer(app, name="泰安泰山联系人测试有限公司")
    body = {**body, "customer_id": customer}
    bad = admin_client.post(api, json={**body, "custom": {"decision_level": "low"}})
    assert bad.status_code == 422 and "custom.decision_level" in bad.get_json()["message"]
    good = admin_client.post(api, json={**body, "custom": {"decision_level": "high"}})
    assert good.status_code == 201, good.get_json()
    assert good.get_json()["result"]["custom"] == {"decision_level": "high"}


@pytest.mark.parametrize("custom", [["a"], "text", 5])
def test_custom_values_must_be_an_object(admin_client, custom):
    answer = admin_client.post(CUSTOMERS, json={"name": "聊城东昌府测试", "custom": custom})
    assert answer.status_code in (400, 422)
    assert "Traceback" not in answer.get_data(as_text=True)
