"""Layouts (页面布局): per record type and role, the sections of the forms and the record page,
and the list's columns and default order; made in the designer, moved in bundles."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import yaml
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from helpers import add_customer, define_field
from sqlalchemy import select
from test_translations import untranslated

from crm_core.cli import main
from crm_core.cli.users import ensure_user
from crm_core.customers.models import Customer
from crm_core.db import session
from crm_core.lowcode.layout_screen import layout_models
from crm_core.lowcode.layouts import Layout
from crm_core.testing.plugin import PASSWORD, login_client, user_id

#: The rep's customer layout: name and phone first, the credit limit hidden.
REP_SECTIONS = [
    {"title_zh": "基本信息", "title_en": "Basics", "fields": ["name", "phone"]},
    {
        "title_zh": "地址与分类",
        "title_en": "Address and class",
        "fields": ["code", "kind", "city", "address", "industry", "source", "notes"],
    },
]


def crm(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def add_layout(admin_client, model: str = "Customer", role: str | None = "Sales Rep") -> int:  # type: ignore[no-untyped-def]
    """Add a layout on the screen (the new layout opens in the designer); its id."""
    data = {"model": model, "role": "" if role is None else str(_role_id(admin_client, role))}
    answer = admin_client.post("/layouts/add", data=data)
    assert answer.status_code == 302, answer.get_data(as_text=True)[-2000:]
    found = re.search(r"/layouts/design/(\d+)", answer.headers["Location"])
    assert found, answer.headers["Location"]
    return int(found.group(1))


def _role_id(admin_client, name: str) -> int:  # type: ignore[no-untyped-def]
    app = admin_client.application
    with app.app_context():
        return int(app.appbuilder.sm.find_role(name).id)


def design(admin_client, pk: int, **layout: Any):  # type: ignore[no-untyped-def]
    """What the designer's Save sends."""
    body = {"sections": [], "list_columns": [], "order_column": "", "order_direction": "asc"}
    return admin_client.post(f"/layouts/design/{pk}", json={**body, **layout})


def rep_layout(admin_client, **extra: Any) -> int:  # type: ignore[no-untyped-def]
    pk = add_layout(admin_client)
    saved = design(admin_client, pk, sections=REP_SECTIONS, **extra)
    assert saved.status_code == 200, saved.get_json()
    return pk


def panels(page: str) -> list[tuple[str, list[str]]]:
    """``(title, field ids)`` of each section of a FAB form page."""
    out = []
    for chunk in page.split('<div class="panel-group"')[1:]:
        title = re.search(r'class="accordion-toggle"[^>]*>([^<]*)<', chunk)
        ids = re.findall(r'<label for="([^"]+)"', chunk)
        out.append(((title.group(1).strip() if title else ""), ids))
    return out


def designer_data(page: str) -> Any:
    """The data the designer page starts from."""
    found = re.search(r'<script type="application/json" id="crm-layout-data">(.*?)</script>', page)
    assert found, page[-2000:]
    return json.loads(found.group(1))


def record_sections(page: str) -> str:
    """The sections of the 360° page (up to the contacts)."""
    start = page.index('id="crm-record-sections"')
    return page[start : page.index("<h3>", start)]


def test_a_reps_layout_arranges_their_forms_and_the_record_page(app, admin_client):
    rep_layout(admin_client)
    rep = login_client(app, "Sales Rep")
    add = rep.get("/customers/add").get_data(as_text=True)
    sections = panels(add)
    assert sections[0] == ("基本信息", ["name", "phone"]), sections
    assert sections[1][0] == "地址与分类" and sections[1][1][:3] == ["code", "kind", "city"]
    assert 'id="credit_limit"' not in add and "信用额度" not in add
    assert 'id="uscc"' not in add  # what the designer left out is hidden too

    made = rep.post("/customers/add", data={"name": "苏州布局科技", "phone": "13812345678"})
    assert made.status_code == 302
    with app.app_context():
        pk = session().scalar(select(Customer.id).where(Customer.name == "苏州布局科技"))
    edit = rep.get(f"/customers/edit/{pk}").get_data(as_text=True)
    assert panels(edit)[0] == ("基本信息", ["name", "phone"])
    assert 'id="credit_limit"' not in edit

    page = rep.get(f"/customer/{pk}").get_data(as_text=True)
    details = record_sections(page)
    assert "基本信息" in details and "地址与分类" in details and "信用额度" not in details
    assert details.index("名称") < details.index("电话") < details.index("城市")

    for url in ("/customers/add", f"/customers/edit/{pk}"):
        admins = admin_client.get(url).get_data(as_text=True)
        assert 'id="credit_limit"' in admins and "基本信息" not in admins
    assert 'id="crm-record-sections"' not in admin_client.get(f"/customer/{pk}").get_data(
        as_text=True
    )


def test_the_show_page_of_other_record_types_follows_the_default_layout(app, admin_client):
    pk = add_layout(admin_client, "Contact", None)
    sections = [
        {
            "title_zh": "联系方式",
            "title_en": "How to reach",
            "fields": ["customer", "name", "mobile"],
        }
    ]
    assert design(admin_client, pk, sections=sections).status_code == 200
    customer = add_customer(app, name="无锡联系人测试", owner_id=user_id(app, "Sales Rep"))
    rep = login_client(app, "Sales Rep")
    made = rep.post(
        "/api/v1/contact/", json={"customer_id": customer, "name": "李雷", "wechat": "lilei88"}
    )
    assert made.status_code == 201, made.get_json()
    contact = made.get_json()["id"]
    for client in (rep, admin_client):  # the default layout is every role's, admins' too
        page = client.get(f"/contacts/show/{contact}").get_data(as_text=True)
        assert "联系方式" in page and "李雷" in page
        assert "微信" not in page  # wechat is hidden on the record page


def test_saving_the_reps_edit_form_keeps_the_hidden_credit_limit(app, admin_client):
    rep_layout(admin_client)
    pk = add_customer(
        app, name="常州信用测试", credit_limit=Decimal("500000"), owner_id=user_id(app, "Sales Rep")
    )
    rep = login_client(app, "Sales Rep")
    form = {"name": "常州信用测试有限公司", "phone": "13900001111", "kind": "company", "code": ""}
    # A value sent for a hidden field is ignored as well: the form has no such field.
    saved = rep.post(f"/customers/edit/{pk}", data={**form, "credit_limit": "1"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[-1500:]
    with app.app_context():
        customer = session().get(Customer, pk)
        assert customer.name == "常州信用测试有限公司" and customer.phone == "+8613900001111"
        assert customer.credit_limit == Decimal("500000")


def test_list_columns_and_default_order_per_role_but_not_the_api(app, admin_client):
    rep_id = user_id(app, "Sales Rep")
    for name in ("Bravo 乙", "Alpha 甲", "Charlie 丙"):
        add_customer(app, name=name, city="南京市", credit_limit=Decimal("1000"), owner_id=rep_id)
    rep = login_client(app, "Sales Rep")
    api_before = rep.get("/api/v1/customer/").get_json()
    rep_layout(
        admin_client,
        list_columns=["name", "credit_limit", "city"],
        order_column="name",
        order_direction="desc",
    )
    listing = rep.get("/customers/list/").get_data(as_text=True)
    table = listing[listing.rindex("<table") :]
    heads = re.findall(r"<th[^>]*>\s*(?:<a[^>]*>)?\s*([^<\s][^<]*?)\s*<", table)
    assert [h for h in heads if h in ("名称", "信用额度", "城市", "编号", "电话")] == [
        "名称",
        "信用额度",
        "城市",
    ]
    assert re.findall(r"<td>(\w+ [甲乙丙])</td>", table) == ["Charlie 丙", "Bravo 乙", "Alpha 甲"]
    assert "1000.00" in table

    admins = admin_client.get("/customers/list/").get_data(as_text=True)
    admin_table = admins[admins.rindex("<table") :]
    assert "编号" in admin_table and "信用额度" not in admin_table

    api_after = rep.get("/api/v1/customer/").get_json()
    assert api_after["list_columns"] == api_before["list_columns"]
    assert api_after["ids"] == api_before["ids"]  # the API keeps its own columns and order


def test_a_custom_field_defined_later_shows_in_the_last_section(app, admin_client):
    pk = rep_layout(admin_client)
    define_field(
        admin_client, name="wechat_id", kind="text", label_zh="微信号", label_en="WeChat ID"
    )
    rep = login_client(app, "Sales Rep")
    sections = panels(rep.get("/customers/add").get_data(as_text=True))
    assert sections[-1] == ("其他字段", ["custom__wechat_id"]), sections
    customer = add_customer(
        app,
        name="镇江微信测试",
        owner_id=user_id(app, "Sales Rep"),
        custom={"wechat_id": "zj_2026"},
    )
    page = rep.get(f"/customer/{customer}").get_data(as_text=True)
    details = record_sections(page)
    assert details.index("其他字段") < details.index("微信号") < details.index("zj_2026")
    # The designer offers it in a section of its own; saved without it, it is hidden.
    offered = designer_data(admin_client.get(f"/layouts/design/{pk}").get_data(as_text=True))
    assert offered["sections"][-1] == {
        "title_zh": "其他字段",
        "title_en": "Other fields",
        "fields": ["custom__wechat_id"],
    }
    assert design(admin_client, pk, sections=REP_SECTIONS).status_code == 200
    assert "custom__wechat_id" not in rep.get("/customers/add").get_data(as_text=True)


def test_the_designer_refuses_a_layout_without_a_required_field(app, admin_client):
    pk = add_layout(admin_client)
    no_name = [{"title_zh": "电话", "title_en": "", "fields": ["phone"]}]
    refused = design(admin_client, pk, sections=no_name)
    assert refused.status_code == 422
    assert "名称 是必填字段，请放入一个分组。" in refused.get_json()["errors"]
    define_field(admin_client, name="grade", kind="text", label_zh="客户等级", required="y")
    refused = design(admin_client, pk, sections=REP_SECTIONS)
    assert refused.get_json()["errors"] == ["客户等级 是必填字段，请放入一个分组。"]
    wrong = design(
        admin_client,
        pk,
        sections=[
            {"title_zh": "", "fields": ["name", "custom__grade", "colour"]},
            {"title_zh": "空", "fields": []},
        ],
        list_columns=["name", "tags"],
        order_column="notes",
    )
    assert wrong.status_code == 422
    assert set(wrong.get_json()["errors"]) == {
        "每个分组都需要一个中文标题。",
        "没有字段 colour。",
        "分组 空 中没有字段。",
        "tags 不能作为列表的列。",
        "列表不能按 notes 排序。",
    }
    admin_client.get("/lang/en")
    english = design(admin_client, pk, sections=no_name).get_json()["errors"]
    assert "Name is required: put it in a section." in english
    assert design(admin_client, pk, sections="none").status_code == 400
    with app.app_context():
        assert session().get(Layout, pk).sections is None  # nothing was stored


def test_the_lowest_role_id_wins_and_the_default_covers_the_other_roles(app, admin_client):
    default = add_layout(admin_client, role=None)
    assert design(admin_client, default, list_columns=["name", "city"]).status_code == 200
    manager = add_layout(admin_client, role="Sales Manager")
    assert design(admin_client, manager, list_columns=["name", "industry"]).status_code == 200
    rep = add_layout(admin_client, role="Sales Rep")
    assert design(admin_client, rep, list_columns=["name", "phone"]).status_code == 200
    with app.app_context():
        ensure_user("t_both", PASSWORD, "t_both@example.cn", "Sales Rep", first="t_both")
        sm = app.appbuilder.sm
        both = sm.find_user(username="t_both")
        both.roles.append(sm.find_role("Sales Manager"))
        session().commit()
        lowest = min(r.id for r in both.roles)
        winner = "行业" if lowest == sm.find_role("Sales Manager").id else "电话"
        for username in ("t_both", "t_rep", "t_reader"):  # a list with rows shows its table
            owner = sm.find_user(username=username)
            session().add(Customer(name=f"{username} 的客户", owner_id=owner.id))
        session().commit()

    def columns(client) -> list[str]:  # type: ignore[no-untyped-def]
        page = client.get("/customers/list/").get_data(as_text=True)
        table = page[page.rindex("<table") :]
        heads = re.findall(r"<th[^>]*>\s*(?:<a[^>]*>)?\s*([^<\s][^<]*?)\s*<", table)
        return [h for h in heads if h in ("名称", "城市", "行业", "电话", "编号")]

    assert columns(login_client(app, "t_both")) == ["名称", winner]
    assert columns(login_client(app, "Sales Rep")) == ["名称", "电话"]
    assert columns(login_client(app, "Read-only")) == ["名称", "城市"]  # the default layout


def test_the_layouts_screen_and_designer(app, admin_client):
    listing = admin_client.get("/layouts/list/").get_data(as_text=True)
    assert "页面布局" in listing
    again = add_layout(admin_client)
    twice = admin_client.post(
        "/layouts/add", data={"model": "Customer", "role": str(_role_id(admin_client, "Sales Rep"))}
    )
    assert twice.status_code == 200 and "已有这个角色的布局" in twice.get_data(as_text=True)
    names = [v["name"] for v in app.config["LANGUAGES"].values()]
    pages = {
        "/layouts/list/": (admin_client.get("/layouts/list/"), ["页面布局", "客户", "记录类型"]),
        f"/layouts/design/{again}": (
            admin_client.get(f"/layouts/design/{again}"),
            ["可用字段", "添加分组", "列表", "默认排序", "保存"],
        ),
    }
    problems = untranslated(pages, names)
    assert not problems, "\n".join(problems)
    assert (
        admin_client.get(f"/layouts/edit/{again}")
        .headers["Location"]
        .endswith(f"/layouts/design/{again}")
    )
    rep = login_client(app, "Sales Rep")
    assert rep.get("/layouts/list/").status_code in (302, 403)
    assert design(rep, again, sections=REP_SECTIONS).status_code in (302, 403)
    with app.test_request_context():
        models = [m for m, _label in layout_models()]
    assert {"Customer", "Contact", "Activity", "Consent"} <= set(models)
    offered = {}
    for model in models:  # each record type's designer opens, with its required fields marked
        page = admin_client.get(f"/layouts/design/{add_layout(admin_client, model, None)}")
        offered[model] = designer_data(page.get_data(as_text=True))
        assert any(f["required"] for f in offered[model]["fields"]), model
    consent_columns = {c["name"] for c in offered["Consent"]["columns"]}
    # A link the screen does not list is not offered as a column (it would join another
    # record into the list's query); its listed name is.
    assert "contact_name" in consent_columns and "contact" not in consent_columns
    deleted = admin_client.post(f"/layouts/delete/{again}")
    assert deleted.status_code == 302
    with app.app_context():
        assert session().get(Layout, again) is None


def test_layouts_travel_in_configuration_bundles(app, admin_client, tmp_path):
    define_field(admin_client, name="wechat_id", kind="text", label_zh="微信号")
    pk = rep_layout(admin_client, list_columns=["name", "city"], order_column="name")
    sections = [
        *REP_SECTIONS,
        {"title_zh": "社交", "title_en": None, "fields": ["custom__wechat_id"]},
    ]
    assert design(admin_client, pk, sections=sections, list_columns=["name"]).status_code == 200
    exported = crm(app, "config", "export")
    assert exported.exit_code == 0, exported.output
    data = yaml.safe_load(exported.stdout)
    layout = data["layouts"]["Customer"]["Sales Rep"]
    assert layout["sections"][0] == {
        "title_zh": "基本信息",
        "title_en": "Basics",
        "fields": ["name", "phone"],
    }
    assert "credit_limit" in layout["hidden"] and layout["list_columns"] == ["name"]

    with app.app_context():  # an instance without the layout
        session().delete(session().get(Layout, pk))
        session().commit()
    data["layouts"]["Customer"]["*"] = {"list_columns": ["name", "custom__wechat_id"]}
    bundle = tmp_path / "crm.yaml"
    bundle.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    diff = crm(app, "config", "diff", str(bundle))
    assert "layouts.Customer.Sales Rep: added" in diff.stdout, diff.output
    assert "layouts.Customer.*: added" in diff.stdout
    done = crm(app, "config", "import", str(bundle))
    assert done.exit_code == 0, done.output
    assert "no changes" in crm(app, "config", "diff", str(bundle)).stdout
    rep = login_client(app, "Sales Rep")
    assert panels(rep.get("/customers/add").get_data(as_text=True))[0][0] == "基本信息"
    reader = login_client(app, "Read-only").get("/customers/list/").get_data(as_text=True)
    assert "微信号" in reader  # the default layout's column

    data["layouts"]["Customer"]["Sales Rep"]["sections"][0]["fields"].append("colour")
    data["layouts"]["Customer"]["Nobody"] = {"list_columns": ["name"]}
    data["layouts"]["Gadget"] = {"*": {"list_columns": ["name"]}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    refused = crm(app, "config", "import", str(bad))
    assert refused.exit_code != 0
    for problem in (
        "layouts.Customer.Sales Rep: 没有字段 colour。",
        "layouts.Customer.Nobody: no such role (add it under roles)",
        "layouts.Gadget: no such record type has a screen here",
    ):
        assert problem in refused.output, refused.output
