"""Picklists: the values of customer source, industry, tier and lifecycle stage are lists admins
edit; forms offer them, lists show their labels, every write is checked."""

from __future__ import annotations

from helpers import add_customer
from sqlalchemy import select

from crm_core.cli.db import sync_picklists
from crm_core.customers.models import Customer
from crm_core.db import session
from crm_core.lowcode.picklists import Picklist, PicklistValue
from crm_core.testing.plugin import login_client, user_id

CUSTOMERS = "/api/v1/customer/"


def _value(app, picklist: str, value: str) -> PicklistValue:
    return session().scalar(
        select(PicklistValue)
        .join(Picklist)
        .where(Picklist.name == picklist, PicklistValue.value == value)
    )


def test_the_core_declares_its_picklists_with_chinese_values(app):
    with app.app_context():
        names = set(session().scalars(select(Picklist.name)))
        assert {"customer_source", "industry", "customer_tier", "lifecycle_stage"} <= names
        industry = session().scalar(select(Picklist).where(Picklist.name == "industry"))
        assert [v.value for v in industry.values][:3] == ["制造业", "批发零售", "信息技术"]
        assert _value(app, "lifecycle_stage", "dormant").label_zh == "沉睡客户"


def test_a_value_must_be_on_its_list(admin_client):
    ok = admin_client.post(CUSTOMERS, json={"name": "大连船舶", "industry": "制造业", "tier": "A"})
    assert ok.status_code == 201, ok.get_json()
    wrong = admin_client.post(CUSTOMERS, json={"name": "大连造船", "industry": "造船"})
    assert wrong.status_code == 422
    assert wrong.get_json()["message"] == {"industry": ["不是可选值之一：造船"]}


def test_a_deactivated_value_is_kept_by_records_but_not_offered(app, admin_client):
    rep = login_client(app, "Sales Rep")
    pk = add_customer(app, name="青岛老客户", source="微信", owner_id=user_id(app, "Sales Rep"))
    with app.app_context():
        _value(app, "customer_source", "微信").active = False
        session().commit()
    refused = admin_client.post(CUSTOMERS, json={"name": "青岛新客户", "source": "微信"})
    assert refused.status_code == 422 and "source" in refused.get_json()["message"]
    kept = admin_client.put(f"{CUSTOMERS}{pk}", json={"city": "青岛市"})
    assert kept.status_code == 200, kept.get_json()

    form = rep.get("/customers/add").get_data(as_text=True)
    assert '<option value="官网">' in form and '<option value="微信"' not in form
    edit = rep.get(f"/customers/edit/{pk}").get_data(as_text=True)
    assert '<option selected value="微信">微信 (停用)</option>' in edit
    saved = rep.post(
        f"/customers/edit/{pk}",
        data={
            "name": "青岛老客户",
            "kind": "company",
            "code": "",
            "source": "微信",
            "city": "青岛",
        },
        follow_redirects=True,
    )
    assert saved.status_code == 200
    with app.app_context():
        customer = session().get(Customer, pk)
        assert (customer.source, customer.city) == ("微信", "青岛")


def test_a_legacy_value_survives_an_edit_form(app):
    rep = login_client(app, "Sales Rep")
    with app.app_context():  # written before the list existed, around the checks
        session().execute(
            Customer.__table__.insert().values(
                code="CLEGACY01",
                name="烟台旧数据",
                kind="company",
                source="转介绍",
                owner_id=user_id(app, "Sales Rep"),
                active=True,
                version=1,
                created_at=Customer.__table__.c.created_at.default.arg(None),
                updated_at=Customer.__table__.c.updated_at.default.arg(None),
            )
        )
        session().commit()
        pk = session().scalar(select(Customer.id).where(Customer.code == "CLEGACY01"))
    edit = rep.get(f"/customers/edit/{pk}").get_data(as_text=True)
    assert 'selected value="转介绍"' in edit
    rep.post(
        f"/customers/edit/{pk}",
        data={"name": "烟台旧数据", "kind": "company", "code": "CLEGACY01", "source": "转介绍"},
    )
    with app.app_context():
        assert session().get(Customer, pk).source == "转介绍"


def test_lists_and_the_360_page_show_labels_in_the_users_language(app):
    rep = login_client(app, "Sales Rep")
    pk = add_customer(
        app, name="宁波北仑港务", lifecycle_stage="dormant", owner_id=user_id(app, "Sales Rep")
    )
    assert "沉睡客户" in rep.get(f"/customer/{pk}").get_data(as_text=True)
    rep.get("/lang/en")
    page = rep.get(f"/customers/show/{pk}", follow_redirects=True).get_data(as_text=True)
    assert "Dormant" in page and "沉睡客户" not in page


def test_admins_add_relabel_and_deactivate_values_on_the_screen(app, admin_client):
    with app.app_context():
        source = session().scalar(select(Picklist).where(Picklist.name == "customer_source"))
        source_id = source.id
    listed = admin_client.get("/picklists/list/").get_data(as_text=True)
    assert "客户来源" in listed and "生命周期阶段" in listed
    added = admin_client.post(
        "/picklistvalues/add",
        data={
            "picklist": str(source_id),
            "value": "抖音",
            "label_zh": "抖音",
            "label_en": "Douyin",
            "color": "",
            "position": "75",
            "active": "y",
        },
        follow_redirects=True,
    )
    assert added.status_code == 200
    made = admin_client.post(CUSTOMERS, json={"name": "杭州滨江直播", "source": "抖音"})
    assert made.status_code == 201, made.get_json()  # valid at once

    with app.app_context():
        value_id = _value(app, "customer_source", "抖音").id
    admin_client.post(f"/picklistvalues/delete/{value_id}", follow_redirects=True)
    with app.app_context():
        value = _value(app, "customer_source", "抖音")
        assert value is not None and value.active is False  # deactivated, not deleted


def test_an_upgrade_keeps_what_admins_changed(app):
    with app.app_context():
        expo = _value(app, "customer_source", "展会")
        expo.label_zh = "展会/会议"
        expo.active = False
        session().commit()
        assert sync_picklists() == 0
        again = _value(app, "customer_source", "展会")
        assert (again.label_zh, again.active) == ("展会/会议", False)
        count = session().query(PicklistValue).filter(PicklistValue.value == "展会").count()
        assert count == 1


def test_a_custom_choice_field_takes_its_choices_from_a_picklist(app, admin_client):
    from helpers import define_field

    define_field(
        admin_client,
        name="partner_industry",
        kind="choice",
        label_zh="合作方行业",
        picklist="industry",
    )
    rep = login_client(app, "Sales Rep")
    form = rep.get("/customers/add").get_data(as_text=True)
    assert 'name="custom__partner_industry"' in form and '<option value="金融">' in form
    made = rep.post(CUSTOMERS, json={"name": "厦门渔业", "custom": {"partner_industry": "金融"}})
    assert made.status_code == 201, made.get_json()
    wrong = rep.post(CUSTOMERS, json={"name": "厦门船厂", "custom": {"partner_industry": "造船"}})
    assert wrong.status_code == 422
    assert "custom.partner_industry" in wrong.get_json()["message"]
    spec = admin_client.get("/api/v1/_openapi").get_json()["components"]["schemas"]
    assert "金融" in spec["CustomerCustomFields"]["properties"]["partner_industry"]["enum"]

    # A value added to the picklist is offered at once; a deactivated one stays on records.
    with app.app_context():
        industry = session().scalar(select(Picklist).where(Picklist.name == "industry"))
        session().add(PicklistValue(picklist=industry, value="渔业", label_zh="渔业", position=99))
        _value(app, "industry", "金融").active = False
        session().commit()
    form = rep.get("/customers/add").get_data(as_text=True)
    assert '<option value="渔业">' in form and '<option value="金融">' not in form
    pk = made.get_json()["id"]
    kept = rep.post(
        f"/customers/edit/{pk}",
        data={
            "name": "厦门渔业",
            "kind": "company",
            "code": "",
            "custom__partner_industry": "金融",
        },
        follow_redirects=True,
    )
    assert kept.status_code == 200 and "help-block" not in kept.get_data(as_text=True)
    page = rep.get(f"/customer/{pk}").get_data(as_text=True)
    assert "合作方行业" in page and "金融" in page
