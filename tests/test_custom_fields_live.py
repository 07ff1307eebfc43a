"""Custom fields appear at once, without a restart: forms, show and 360° pages, list columns,
filters and order, the REST API and its OpenAPI schema."""

from __future__ import annotations

import pytest
from helpers import add_customer, define_field
from sqlalchemy import select

from crm_core.customers.models import Customer
from crm_core.db import session
from crm_core.lowcode.fields import FieldDefinition
from crm_core.testing.plugin import login_client, user_id

CUSTOMERS = "/api/v1/customer/"


@pytest.fixture
def fields(app, admin_client) -> None:
    """微信号 (text, searchable), 客户等级 (choice, searchable), 员工人数 (integer)."""
    define_field(admin_client, name="wechat_id", kind="text", label_zh="微信号", searchable="y")
    define_field(
        admin_client,
        name="grade",
        kind="choice",
        label_zh="客户等级",
        label_en="Grade",
        choices="A|A 级\nB|B 级\nC|C 级",
        searchable="y",
    )
    define_field(admin_client, name="staff", kind="integer", label_zh="员工人数", min_value="1")


def _add(client, **form):  # type: ignore[no-untyped-def]
    data = {"name": "", "kind": "company", "code": "", **form}
    return client.post("/customers/add", data=data, follow_redirects=True)


def _names(client, query: str) -> list[str]:
    answer = client.get(CUSTOMERS + query)
    assert answer.status_code == 200, answer.get_json()
    return [row["name"] for row in answer.get_json()["result"]]


def test_a_rep_fills_new_fields_in_the_form_without_a_restart(app, admin_client, fields):
    rep = login_client(app, "Sales Rep")
    form = rep.get("/customers/add").get_data(as_text=True)
    assert "微信号" in form and "客户等级" in form and "员工人数" in form
    assert 'name="custom__grade"' in form and "B 级" in form

    page = _add(
        rep,
        name="苏州工业园区恒信精密机械有限公司",
        custom__wechat_id=" hx_sz ",
        custom__grade="B",
        custom__staff="350",
    )
    assert page.status_code == 200
    with app.app_context():
        customer = session().scalar(select(Customer).where(Customer.name.like("苏州工业园区%")))
        assert customer.custom == {"wechat_id": "hx_sz", "grade": "B", "staff": 350}
        pk = customer.id

    shown = rep.get(f"/customer/{pk}").get_data(as_text=True)  # the 360° page
    assert "微信号" in shown and "hx_sz" in shown and "B 级" in shown

    edit = rep.get(f"/customers/edit/{pk}").get_data(as_text=True)
    assert 'value="hx_sz"' in edit and 'value="350"' in edit

    listed = rep.get("/customers/list/").get_data(as_text=True)
    assert "客户等级" in listed and "B 级" in listed  # a searchable field is a list column
    assert "员工人数" not in listed.split("<table")[1]  # the others are not


def test_a_wrong_value_in_the_form_is_shown_under_the_field_in_chinese(app, fields):
    rep = login_client(app, "Sales Rep")
    page = _add(rep, name="无锡新吴区测试有限公司", custom__staff="很多", custom__grade="A")
    text = page.get_data(as_text=True)
    assert "请输入数字" in text
    page = _add(rep, name="无锡新吴区测试有限公司", custom__staff="0", custom__grade="A")
    assert "不能小于" in page.get_data(as_text=True)
    with app.app_context():
        assert session().scalar(select(Customer).where(Customer.name.like("无锡新吴区%"))) is None


def test_editing_keeps_the_values_of_fields_the_form_does_not_show(app, admin_client, fields):
    define_field(admin_client, name="legacy", kind="text", label_zh="旧系统编号")
    rep = login_client(app, "Sales Rep")
    pk = add_customer(
        app,
        name="常州武进老客户有限公司",
        owner_id=user_id(app, "Sales Rep"),
        custom={"grade": "A", "legacy": "K-001"},
    )
    with app.app_context():
        legacy = session().scalar(select(FieldDefinition).where(FieldDefinition.name == "legacy"))
        legacy.active = False
        session().commit()
    edit = rep.get(f"/customers/edit/{pk}").get_data(as_text=True)
    assert "旧系统编号" not in edit
    page = rep.post(
        f"/customers/edit/{pk}",
        data={
            "name": "常州武进老客户有限公司",
            "kind": "company",
            "code": "",
            "custom__grade": "C",
        },
        follow_redirects=True,
    )
    assert page.status_code == 200
    with app.app_context():
        assert session().get(Customer, pk).custom == {"grade": "C", "legacy": "K-001"}


def test_the_list_filters_and_sorts_by_custom_fields(app, fields):
    rep = login_client(app, "Sales Rep")
    rep_id = user_id(app, "Sales Rep")
    for name, grade, staff in [
        ("甲", "A", 30),
        ("乙", "B", 500),
        ("丙", "A", 120),
        ("丁", None, 9),
    ]:
        custom = {"staff": staff, **({"grade": grade} if grade else {})}
        add_customer(app, name=f"{name}公司", owner_id=rep_id, custom=custom)

    html = rep.get("/customers/list/?_flt_0_custom__grade=A").get_data(as_text=True)
    assert "甲公司" in html and "丙公司" in html and "乙公司" not in html

    assert sorted(_names(rep, "?q=(filters:!((col:custom__grade,opr:eq,value:A)))")) == [
        "丙公司",
        "甲公司",
    ]
    by_staff = "?q=(order_column:custom__staff,order_direction:desc)"
    assert _names(rep, by_staff) == ["乙公司", "丙公司", "甲公司", "丁公司"]
    bigger = "?q=(filters:!((col:custom__staff,opr:gt,value:'100')))"
    assert sorted(_names(rep, bigger)) == ["丙公司", "乙公司"]
    nonsense = "?q=(filters:!((col:custom__staff,opr:gt,value:many)))"
    assert _names(rep, nonsense) == []


def test_the_api_returns_accepts_and_documents_them(app, admin_client, fields):
    created = admin_client.post(
        CUSTOMERS, json={"name": "南通崇川远航船舶", "custom": {"grade": "A", "staff": "80"}}
    )
    assert created.status_code == 201, created.get_json()
    pk = created.get_json()["id"]
    got = admin_client.get(f"{CUSTOMERS}{pk}").get_json()["result"]
    assert got["custom"] == {"grade": "A", "staff": 80}
    wrong = admin_client.put(f"{CUSTOMERS}{pk}", json={"custom": {"grade": "Z"}})
    assert wrong.status_code == 422 and "custom.grade" in wrong.get_json()["message"]

    spec = admin_client.get("/api/v1/_openapi").get_json()
    schemas = spec["components"]["schemas"]
    custom = schemas["CustomerCustomFields"]["properties"]
    assert custom["grade"]["enum"] == ["A", "B", "C"]
    assert custom["staff"]["type"] == "integer" and custom["staff"]["minimum"] == 1
    assert "客户等级" in custom["grade"]["description"]


def test_a_new_field_shows_up_on_the_next_request_and_a_removed_one_goes(app, admin_client):
    rep = login_client(app, "Sales Rep")
    assert "会员卡号" not in rep.get("/customers/add").get_data(as_text=True)
    define_field(admin_client, name="card_no", kind="text", label_zh="会员卡号")
    assert "会员卡号" in rep.get("/customers/add").get_data(as_text=True)
    spec = admin_client.get("/api/v1/_openapi").get_json()
    assert "card_no" in spec["components"]["schemas"]["CustomerCustomFields"]["properties"]

    with app.app_context():
        card = session().scalar(select(FieldDefinition).where(FieldDefinition.name == "card_no"))
        card.active = False
        session().commit()
    assert "会员卡号" not in rep.get("/customers/add").get_data(as_text=True)


def test_a_sensitive_custom_field_is_masked_for_a_rep(app, admin_client):
    define_field(admin_client, name="id_number", kind="text", label_zh="身份证号", sensitive="y")
    rep_id = user_id(app, "Sales Rep")
    pk = add_customer(
        app,
        name="李娜",
        kind="person",
        owner_id=rep_id,
        custom={"id_number": "320102198001011234"},
    )
    rep = login_client(app, "Sales Rep")
    got = rep.get(f"{CUSTOMERS}{pk}").get_json()["result"]
    assert got["custom"]["id_number"] == "3201****1234"
    page = rep.get(f"/customer/{pk}").get_data(as_text=True)
    assert "3201****1234" in page and "320102198001011234" not in page
    edit = rep.get(f"/customers/edit/{pk}").get_data(as_text=True)
    assert "320102198001011234" not in edit
    # Sent back masked, the stored value is kept.
    assert (
        rep.put(f"{CUSTOMERS}{pk}", json={"custom": {"id_number": "3201****1234"}}).status_code
        == 200
    )
    with app.app_context():
        assert session().get(Customer, pk).custom["id_number"] == "320102198001011234"
    admin = admin_client.get(f"{CUSTOMERS}{pk}").get_json()["result"]
    assert admin["custom"]["id_number"] == "320102198001011234"
    # On the edit form: sent back as shown, it is kept; half-typed over the stars, refused.
    form = {"name": "李娜", "kind": "person", "code": "", "custom__id_number": "3201****1234"}
    rep.post(f"/customers/edit/{pk}", data={**form, "city": "南京市"})
    with app.app_context():
        customer = session().get(Customer, pk)
        assert (customer.city, customer.custom["id_number"]) == ("南京市", "320102198001011234")
    page = rep.post(
        f"/customers/edit/{pk}", data={**form, "custom__id_number": "3201****9999"}
    ).get_data(as_text=True)
    assert "请输入完整的值" in page
    with app.app_context():
        assert session().get(Customer, pk).custom["id_number"] == "320102198001011234"


def test_a_searchable_field_gets_an_index_that_filters_use(app, admin_client, crm_backend):
    from sqlalchemy import text

    from crm_core.lowcode.indexes import present, sync_indexes

    define_field(admin_client, name="region", kind="text", label_zh="大区", searchable="y")
    with app.app_context():
        counts = sync_indexes()
        engine = session().get_bind()
        names = set(present(engine))
        if crm_backend == "mysql":  # no JSON expression indexes on MariaDB: filters scan
            assert counts == {"created": 0, "dropped": 0}
            return
        assert counts["created"] == 1 and "ix_cf_crm_customer_region" in names
        assert sync_indexes() == {"created": 0, "dropped": 0}  # nothing left to do
        if crm_backend == "sqlite":
            plan = session().execute(
                text("EXPLAIN QUERY PLAN SELECT id FROM crm_customer WHERE " + _region_equals())
            )
            assert "ix_cf_crm_customer_region" in str(plan.all())
        region = session().scalar(select(FieldDefinition).where(FieldDefinition.name == "region"))
        region.searchable = False
        session().commit()
        assert sync_indexes()["dropped"] == 1
        assert "ix_cf_crm_customer_region" not in present(engine)


def _region_equals() -> str:
    """The WHERE clause the list's "equal to" filter on the region field sends."""
    from sqlalchemy.dialects import sqlite

    from crm_core.lowcode.live import field_of
    from crm_core.lowcode.query import expression

    defn = field_of(Customer, "custom__region")
    clause = expression(Customer, defn) == "华东"
    return str(clause.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def test_the_history_shows_each_custom_field_under_its_label(app, admin_client, fields):
    rep = login_client(app, "Sales Rep")
    made = rep.post(CUSTOMERS, json={"name": "扬州广陵漆器厂", "custom": {"grade": "A"}})
    pk = made.get_json()["id"]
    assert (
        rep.put(f"{CUSTOMERS}{pk}", json={"custom": {"grade": "B", "staff": 40}}).status_code == 200
    )
    history = rep.get(f"/customer/{pk}").get_data(as_text=True).split('id="crm-history"')[1]
    assert "<strong>客户等级</strong>: A 级 &rarr; B 级" in history
    assert "<strong>员工人数</strong>:  &rarr; 40" in history
