"""Validation rules admins write: conditions, a check on a field, their own message."""

from __future__ import annotations

from helpers import add_customer, define_field
from sqlalchemy import select

from crm_core.customers.models import Customer
from crm_core.db import session
from crm_core.lowcode.validation import ValidationRule
from crm_core.testing.plugin import login_client

CUSTOMERS = "/api/v1/customer/"


def _rule(admin_client, **form: str):  # type: ignore[no-untyped-def]
    data = {
        "model": "Customer",
        "join": "all",
        "conditions": "",
        "argument": "",
        "message_en": "",
        "position": "10",
        "active": "y",
        **form,
    }
    return admin_client.post("/validationrules/add", data=data, follow_redirects=True)


def test_if_industry_is_manufacturing_the_credit_limit_is_required(app, admin_client):
    page = _rule(
        admin_client,
        name="制造业客户须填信用额度",
        conditions="industry eq 制造业",
        target="credit_limit",
        check="required",
        message_zh="制造业客户请填写信用额度",
        message_en="Manufacturers need a credit limit",
    )
    assert page.status_code == 200
    refused = admin_client.post(CUSTOMERS, json={"name": "苏州精工", "industry": "制造业"})
    assert refused.status_code == 422
    assert refused.get_json()["message"] == {"credit_limit": ["制造业客户请填写信用额度"]}
    ok = admin_client.post(
        CUSTOMERS, json={"name": "苏州精工", "industry": "制造业", "credit_limit": "500000"}
    )
    assert ok.status_code == 201, ok.get_json()
    other = admin_client.post(CUSTOMERS, json={"name": "苏州银行", "industry": "金融"})
    assert other.status_code == 201
    admin_client.get("/lang/en")
    english = admin_client.post(CUSTOMERS, json={"name": "Suzhou Tools", "industry": "制造业"})
    assert english.get_json()["message"] == {"credit_limit": ["Manufacturers need a credit limit"]}


def test_ranges_and_custom_fields(app, admin_client):
    define_field(
        admin_client, name="grade", kind="choice", label_zh="客户等级", choices="A|A 级\nB|B 级"
    )
    define_field(admin_client, name="staff", kind="integer", label_zh="员工人数")
    _rule(
        admin_client,
        name="信用额度上限",
        target="credit_limit",
        check="max",
        argument="1000000",
        message_zh="信用额度不能超过一百万",
    )
    _rule(
        admin_client,
        name="A 级客户须填员工人数",
        conditions="custom__grade eq A",
        target="custom__staff",
        check="required",
        message_zh="A 级客户请填写员工人数",
    )
    over = admin_client.post(CUSTOMERS, json={"name": "甲", "credit_limit": "2000000"})
    assert over.get_json()["message"] == {"credit_limit": ["信用额度不能超过一百万"]}
    missing = admin_client.post(CUSTOMERS, json={"name": "乙", "custom": {"grade": "A"}})
    assert missing.get_json()["message"] == {"custom.staff": ["A 级客户请填写员工人数"]}
    fine = admin_client.post(CUSTOMERS, json={"name": "丙", "custom": {"grade": "A", "staff": 9}})
    assert fine.status_code == 201


def test_one_date_before_another(app, admin_client):
    define_field(admin_client, name="signed_on", kind="date", label_zh="签约日期")
    define_field(admin_client, name="expires_on", kind="date", label_zh="到期日期")
    _rule(
        admin_client,
        name="签约早于到期",
        target="custom__signed_on",
        check="before",
        argument="custom__expires_on",
        message_zh="签约日期须早于到期日期",
    )
    wrong = admin_client.post(
        CUSTOMERS,
        json={"name": "丁", "custom": {"signed_on": "2026-12-01", "expires_on": "2026-11-01"}},
    )
    assert wrong.get_json()["message"] == {"custom.signed_on": ["签约日期须早于到期日期"]}
    right = admin_client.post(
        CUSTOMERS,
        json={"name": "戊", "custom": {"signed_on": "2026-01-01", "expires_on": "2027-01-01"}},
    )
    assert right.status_code == 201


def test_a_rule_added_later_does_not_block_unrelated_edits(app, admin_client):
    pk = add_customer(app, name="老客户", industry="制造业")
    _rule(
        admin_client,
        name="制造业客户须填信用额度",
        conditions="industry eq 制造业",
        target="credit_limit",
        check="required",
        message_zh="制造业客户请填写信用额度",
    )
    assert admin_client.put(f"{CUSTOMERS}{pk}", json={"city": "常州市"}).status_code == 200
    moved = admin_client.put(f"{CUSTOMERS}{pk}", json={"industry": "其他"})
    assert moved.status_code == 200
    back = admin_client.put(f"{CUSTOMERS}{pk}", json={"industry": "制造业"})
    assert back.status_code == 422  # touching a field the rule reads checks it again


def test_a_rule_that_cannot_work_is_refused_on_the_screen(app, admin_client):
    bad_line = _rule(
        admin_client,
        name="坏规则",
        conditions="industry equals 制造业",
        target="credit_limit",
        check="required",
        message_zh="x",
    ).get_data(as_text=True)
    assert "第 1 行" in bad_line
    unknown = _rule(
        admin_client,
        name="坏规则",
        conditions="colour eq red",
        target="credit_limit",
        check="required",
        message_zh="x",
    ).get_data(as_text=True)
    assert "colour" in unknown
    with app.app_context():
        assert session().scalars(select(ValidationRule)).all() == []


def test_a_broken_rule_on_a_form_is_shown_under_its_field_keeping_the_input(app, admin_client):
    _rule(
        admin_client,
        name="制造业客户须填信用额度",
        conditions="industry eq 制造业",
        target="credit_limit",
        check="required",
        message_zh="制造业客户请填写信用额度",
    )
    rep = login_client(app, "Sales Rep")
    page = rep.post(
        "/customers/add",
        data={"name": "常州天宁精工", "kind": "company", "code": "", "industry": "制造业"},
    ).get_data(as_text=True)
    row = page[page.index('id="credit_limit"') :][:600]
    assert "制造业客户请填写信用额度" in row  # under the field, not a banner
    assert 'value="常州天宁精工"' in page  # what the user typed is still there
    with app.app_context():
        assert session().scalar(select(Customer).where(Customer.name == "常州天宁精工")) is None
