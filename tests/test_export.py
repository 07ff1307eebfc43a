"""Exports of lists (CSV, XLSX): what the list selects for the user, all of it, as they read it,
for users who may export, each export audited."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from urllib.parse import quote, unquote

import pytest
from helpers import add_customer, define_field
from openpyxl import load_workbook
from plugins_support import install_and_enable
from sqlalchemy import select

from crm_core.customers.models import Customer, Tag
from crm_core.data.export import MAX_ROWS_SETTING
from crm_core.db import session
from crm_core.plugins import lifecycle
from crm_core.security.audit import AuditLog
from crm_core.settings.store import set_setting
from crm_core.testing.plugin import login_client, user_id

CSV_URL = "/export/CustomerView/csv"
XLSX_URL = "/export/CustomerView/xlsx"


def _csv(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/csv"
    body = response.get_data()
    response.close()  # the file it was sent from
    assert body.startswith("\ufeff".encode())  # Excel on Chinese Windows reads it as UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _xlsx(response) -> list[list[object]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    book = load_workbook(io.BytesIO(response.get_data()))
    response.close()
    sheet = book.active
    assert sheet.freeze_panes == "A2"  # the header stays in view
    assert sheet["A1"].font.b
    return [[c.value for c in row] for row in sheet.iter_rows()]


def _column(table: list[list], header: str) -> list:  # type: ignore[type-arg]
    index = table[0].index(header)
    return [row[index] for row in table[1:]]


@pytest.fixture
def three_customers(app) -> dict[str, int]:
    rep, manager = user_id(app, "Sales Rep"), user_id(app, "Sales Manager")
    return {
        "own": add_customer(
            app,
            name="苏州工业园区恒达电子有限公司",
            owner_id=rep,
            phone="13812345678",
            city="苏州",
            tier="A",
            credit_limit=Decimal("125000.50"),
        ),
        "other": add_customer(
            app,
            name="上海华东精密机械有限公司",
            owner_id=manager,
            phone="13987654321",
            city="上海",
        ),
        "pool": add_customer(
            app, name="上海浦江物流有限公司", owner_id=None, phone="13700001111", city="上海"
        ),
    }


def test_a_rep_exports_what_their_list_shows_with_phones_masked(app, three_customers):
    rep = login_client(app, "Sales Rep")
    table = _csv(rep.get(CSV_URL))
    rows = {row[table[0].index("名称")]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    assert sorted(rows) == ["上海浦江物流有限公司", "苏州工业园区恒达电子有限公司"]
    own = rows["苏州工业园区恒达电子有限公司"]
    assert own["电话"] == "138****5678"
    assert "13812345678" not in str(table) and "138 1234 5678" not in str(table)
    # Picklist columns read as their labels; decimals plain.
    assert (own["客户等级"], own["信用额度"]) == ("A 级", "125000.50")


def test_an_admin_exports_every_record_in_full_as_excel(app, three_customers):
    with app.app_context():
        customer = session().get(Customer, three_customers["own"])
        customer.tags = [Tag(name="重点客户"), Tag(name="展会2026")]
        session().commit()
    admin = login_client(app, "Admin")
    response = admin.get(XLSX_URL)
    table = _xlsx(response)
    header = table[0]
    assert {"编号", "名称", "电话", "城市", "负责人", "标签"} <= set(header)
    names = _column(table, "名称")
    assert sorted(names) == sorted(
        ["苏州工业园区恒达电子有限公司", "上海华东精密机械有限公司", "上海浦江物流有限公司"]
    )
    row = dict(zip(header, table[1 + names.index("苏州工业园区恒达电子有限公司")], strict=True))
    assert row["电话"] == "138 1234 5678"
    assert row["负责人"] == "t_rep"
    assert row["信用额度"] == 125000.5  # a number Excel can add up
    assert sorted(str(row["标签"]).split("、")) == ["展会2026", "重点客户"]
    disposition = response.headers["Content-Disposition"]
    assert re.search(r'filename="customer_\d{8}_\d{4}\.xlsx"', disposition)
    assert "filename*=UTF-8''" + quote("客户_") in disposition


def test_the_export_menu_carries_the_lists_filters_and_order(app, three_customers):
    admin = login_client(app, "Admin")
    city = quote("上海")
    listed = admin.get(
        f"/customers/list/?_flt_0_city={city}&_oc_CustomerView=name&_od_CustomerView=desc"
    ).get_data(as_text=True)
    links = re.findall(r'href="(/export/CustomerView/(?:csv|xlsx)[^"]*)"', listed)
    assert len(links) == 2
    csv_link = next(link for link in links if "/csv" in link).replace("&amp;", "&")
    assert "_flt_0_city=" + city in csv_link and "_od_CustomerView=desc" in csv_link
    names = _column(_csv(admin.get(csv_link)), "名称")
    assert names == ["上海浦江物流有限公司", "上海华东精密机械有限公司"]  # by name, descending


def test_every_row_comes_once_whatever_the_batches_and_the_order(app, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_EXPORT_BATCH_SIZE", 2)
    cities = ["北京", None, "上海", "深圳", None, "广州", "上海"]
    for n, city in enumerate(cities):
        add_customer(app, name=f"测试客户{n}", city=city, owner_id=None)
    admin = login_client(app, "Admin")
    by_name = _csv(admin.get(CSV_URL + "?_oc_CustomerView=name&_od_CustomerView=asc"))
    assert _column(by_name, "名称") == [f"测试客户{n}" for n in range(len(cities))]
    # A column that may be empty cannot be paged by key: numbered pages, same rows.
    by_city = _column(
        _csv(admin.get(CSV_URL + "?_oc_CustomerView=city&_od_CustomerView=asc")), "名称"
    )
    assert sorted(by_city) == sorted(f"测试客户{n}" for n in range(len(cities)))
    assert len(by_city) == len(cities)


def test_custom_fields_are_columns_under_their_labels(app, admin_client):
    define_field(
        admin_client,
        name="channel",
        kind="choice",
        label_zh="渠道",
        label_en="Channel",
        choices="direct|直销\nagent|代理",
    )
    define_field(admin_client, name="years", kind="integer", label_zh="合作年限")
    define_field(admin_client, name="vip", kind="bool", label_zh="战略客户")
    add_customer(
        app,
        name="深圳市前海云图科技有限公司",
        custom={"channel": "agent", "years": 3, "vip": True},
    )
    table = _csv(admin_client.get(CSV_URL))
    row = dict(zip(table[0], table[1], strict=True))
    assert (row["渠道"], row["合作年限"], row["战略客户"]) == ("代理", "3", "是")
    sheet = _xlsx(admin_client.get(XLSX_URL))
    assert dict(zip(sheet[0], sheet[1], strict=True))["合作年限"] == 3  # a number in Excel
    admin_client.get("/lang/en")
    english = _csv(admin_client.get(CSV_URL))
    assert "Channel" in english[0] and "Name" in english[0]
    assert dict(zip(english[0], english[1], strict=True))["Channel"] == "代理"


def test_each_export_is_audited_and_shown_on_the_audit_screen(app, three_customers):
    rep = login_client(app, "Sales Rep")
    _csv(rep.get(CSV_URL + "?_flt_0_city=" + quote("上海")))
    with app.app_context():
        entry = session().scalar(select(AuditLog).where(AuditLog.operation == "exportlist"))
        assert entry is not None
        assert (entry.model, entry.user_id, entry.channel) == (
            "customer",
            user_id(app, "Sales Rep"),
            "web",
        )
        assert entry.changes["format"] == [None, "csv"]
        assert entry.changes["rows"] == [None, 1]  # the pool's Shanghai customer
        assert "上海" in entry.changes["filters"][1]
    admin = login_client(app, "Admin")
    admin.get("/lang/en")
    screen = admin.get("/auditlog/list/?_flt_0_operation=exportlist").get_data(as_text=True)
    assert "List exported" in screen and "t_rep" in screen


def test_without_the_permission_there_is_no_menu_and_no_file(app, three_customers):
    analyst = login_client(app, "Analyst")  # may list customers, not export them
    listed = analyst.get("/customers/list/")
    assert listed.status_code == 200 and "/export/CustomerView" not in listed.get_data(as_text=True)
    assert analyst.get(CSV_URL).status_code == 403
    assert analyst.get(XLSX_URL).status_code == 403
    rep = login_client(app, "Sales Rep")
    assert "/export/CustomerView/xlsx" in rep.get("/customers/list/").get_data(as_text=True)
    assert rep.get("/export/CustomerPoolView/csv").status_code == 403  # the pool: managers
    assert rep.get("/export/NoSuchView/csv").status_code == 404
    assert rep.get("/export/CustomerView/pdf").status_code == 404
    anonymous = app.test_client().get(CSV_URL)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    with app.app_context():
        assert session().scalar(select(AuditLog).where(AuditLog.operation == "exportlist")) is None


def test_a_list_over_the_limit_is_refused_with_a_hint_to_filter(app, three_customers):
    with app.app_context():
        set_setting(MAX_ROWS_SETTING, 1)
        session().commit()
    admin = login_client(app, "Admin")
    admin.get("/lang/en")
    refused = admin.get(CSV_URL + "?_flt_0_city=" + quote("上"))
    assert refused.status_code == 302
    assert unquote(refused.headers["Location"]).endswith("/customers/list/?_flt_0_city=上")
    page = admin.get(refused.headers["Location"]).get_data(as_text=True)
    assert "more than 1 records" in page and "filter" in page
    narrowed = _csv(admin.get(CSV_URL + "?_flt_0_city=" + quote("苏州")))
    assert _column(narrowed, "Name") == ["苏州工业园区恒达电子有限公司"]
    with app.app_context():
        found = session().scalars(select(AuditLog).where(AuditLog.operation == "exportlist"))
        assert [e.changes["rows"][1] for e in found] == [1]  # the refused one wrote nothing


def test_formulas_typed_into_records_stay_text(app):
    add_customer(app, name='=HYPERLINK("http://evil.example","点我")', city="@SUM(A1)")
    admin = login_client(app, "Admin")
    row = dict(zip(*_csv(admin.get(CSV_URL))[:2], strict=True))
    assert row["名称"].startswith("'=HYPERLINK") and row["城市"] == "'@SUM(A1)"
    with admin.get(XLSX_URL) as response:
        sheet = load_workbook(io.BytesIO(response.get_data())).active
    name = sheet.cell(row=2, column=[c.value for c in sheet[1]].index("名称") + 1)
    assert name.data_type == "s" and name.value.startswith("=HYPERLINK")


def test_a_plugin_list_exports_too(plugin_site):
    site = plugin_site("testplugin")
    app = site.start()
    install_and_enable(app, "testplugin")
    admin = site.client(app)
    define_field(
        admin,
        model="Gadget",
        name="colour",
        kind="choice",
        label_zh="颜色",
        choices="red|红色\nblue|蓝色",
    )
    for name, colour in (("Widget-R", "red"), ("Widget-B", "blue")):
        made = admin.post("/api/v1/gadget/", json={"name": name, "custom": {"colour": colour}})
        assert made.status_code == 201, made.get_json()
    listed = admin.get("/gadgets/list/").get_data(as_text=True)
    assert "/export/GadgetView/xlsx" in listed
    table = _xlsx(admin.get("/export/GadgetView/xlsx?_flt_0_custom__colour=blue"))
    assert "颜色" in table[0]
    assert [dict(zip(table[0], r, strict=True))["颜色"] for r in table[1:]] == ["蓝色"]
    with app.app_context():
        lifecycle.disable("testplugin")
    assert admin.get("/export/GadgetView/csv").status_code == 404


def test_a_filter_value_the_database_cannot_use_is_a_message_not_an_error(app, three_customers):
    admin = login_client(app, "Admin")
    admin.get("/lang/en")
    answer = admin.get(CSV_URL + "?_flt_0_owner=abc")
    answer.close()
    # PostgreSQL refuses to compare an id with "abc"; SQLite and MariaDB find no such owner.
    assert answer.status_code in (200, 302)
    if answer.status_code == 302:
        page = admin.get(answer.headers["Location"], follow_redirects=True)
        assert "does not fit its field (Owner)" in page.get_data(as_text=True)


def test_the_users_layout_decides_the_columns(app, admin_client, three_customers):
    made = admin_client.post("/layouts/add", data={"model": "Customer", "role": _rep_role(app)})
    pk = re.search(r"/layouts/design/(\d+)", made.headers["Location"]).group(1)  # type: ignore[union-attr]
    sections = [{"title_zh": "基本信息", "title_en": "Basics", "fields": ["name", "phone", "city"]}]
    layout = {"sections": sections, "list_columns": ["city", "name"], "order_column": ""}
    assert admin_client.post(f"/layouts/design/{pk}", json=layout).status_code == 200
    rep_header = _csv(login_client(app, "Sales Rep").get(CSV_URL))[0]
    assert rep_header[:3] == ["城市", "名称", "电话"]
    assert "邮箱" not in rep_header and "地址" not in rep_header  # left out of the layout
    assert "邮箱" in _csv(admin_client.get(CSV_URL))[0]  # the layout is the reps' only


def _rep_role(app) -> str:  # type: ignore[no-untyped-def]
    with app.app_context():
        return str(app.appbuilder.sm.find_role("Sales Rep").id)
