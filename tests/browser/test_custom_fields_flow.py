"""Custom fields tried as an admin and a rep would, in a real browser, with no restart.

The admin adds 微信号 (text, with the WeChat ID pattern) and 客户等级 (a choice) to customers
on the 自定义字段 screen of ``crm demo --serve``. A rep of the demo then sees both on the
customer form at once: a wrong 微信号 gets its error under the field in Chinese, the corrected
form is saved; the rep filters the customer list by 客户等级, and the REST API (with the
browser's session) returns the values, accepts a change and names a wrong one.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from browser_support import UI, log_in, log_out, submit

pytestmark = pytest.mark.browser

REP, REP_PASSWORD = "wangfang", "demo1234"  # a demo sales rep (see crm_core.demo)
NAME = "苏州工业园区自定义字段测试有限公司"
WECHAT_PATTERN = "[A-Za-z][-_A-Za-z0-9]{5,19}"


def _define(ui: UI, **fields: str) -> None:
    """Fill the 自定义字段 form (selects by value, boxes by ``"y"``) and save it."""
    page = ui.page
    ui.goto("/customfields/add")
    for name, value in fields.items():
        selector = f"#{name}"
        tag = page.locator(selector).evaluate("e => e.tagName + ':' + (e.type || '')")
        if tag.startswith("SELECT"):
            page.select_option(selector, value)
        elif tag == "INPUT:checkbox":
            page.check(selector)
        else:
            page.fill(selector, value)
    submit(ui)
    assert "/customfields/add" not in page.url, page.locator(".alert-danger").all_inner_texts()


def _admin_adds_fields(ui: UI) -> None:
    log_in(ui)
    _define(
        ui,
        model="Customer",
        name="wechat_id",
        kind="text",
        label_zh="微信号",
        label_en="WeChat ID",
        pattern=WECHAT_PATTERN,
    )
    _define(
        ui,
        model="Customer",
        name="grade",
        kind="choice",
        label_zh="客户等级",
        label_en="Grade",
        choices="A|A 级\nB|B 级\nC|C 级",
        searchable="y",
    )
    ui.goto("/customfields/list/")
    listed = ui.page.locator("table.table-hover").last.inner_text()
    assert "微信号" in listed and "客户等级" in listed, listed
    log_out(ui)


def _rep_fills_the_form(ui: UI) -> None:
    page = ui.page
    ui.goto("/customers/add")
    form = page.locator("form").inner_text()
    assert "微信号" in form and "客户等级" in form, form
    page.fill("#name", NAME)
    page.fill("#city", "苏州市")
    page.fill("#custom__wechat_id", "12")
    page.select_option("#custom__grade", "A")
    submit(ui)
    error = page.locator("tr:has(#custom__wechat_id) .alert-danger")
    assert error.count() == 1, "the wrong 微信号 has no error next to its field"
    assert "格式不正确" in error.inner_text(), error.inner_text()
    assert page.locator("#name").input_value() == NAME, "the form lost what was typed"
    page.fill("#custom__wechat_id", "wx_szgyy88")
    submit(ui)
    assert "/customers/add" not in page.url, page.locator(".alert-danger").all_inner_texts()


def _rep_filters_the_list(ui: UI) -> None:
    page = ui.page
    ui.goto("/customers/list/")
    page.locator("a.accordion-toggle", has_text="搜索").click()
    page.locator("#filter_form button.dropdown-toggle", has_text="添加筛选条件").click()
    page.locator("#filter_form a.filter[name=custom__grade]", has_text="客户等级").click()
    page.select_option("#filter_form select[name=_flt_0_custom__grade]", "A")
    page.locator("#filter_form button[type=submit]", has_text="搜索").click()
    page.wait_for_load_state()
    assert "_flt_0_custom__grade=A" in page.url, page.url
    rows = page.locator("table.table-hover tbody tr").all_inner_texts()
    assert any(NAME in row for row in rows), rows
    assert all("A 级" in row for row in rows), rows


def _rep_uses_the_api(ui: UI) -> int:
    api = ui.page.request
    query = quote("(filters:!((col:custom__grade,opr:eq,value:A)))")
    found = api.get(f"{ui.base_url}/api/v1/customer/?q={query}")
    assert found.status == 200, found.text()
    rows = [r for r in found.json()["result"] if r["name"] == NAME]
    assert len(rows) == 1 and rows[0]["custom"] == {"wechat_id": "wx_szgyy88", "grade": "A"}
    pk = found.json()["ids"][found.json()["result"].index(rows[0])]
    headers = {"Content-Type": "application/json"}
    wrong = api.put(
        f"{ui.base_url}/api/v1/customer/{pk}",
        data=json.dumps({"custom": {"grade": "Z"}}),
        headers=headers,
    )
    assert wrong.status == 422, wrong.text()
    assert "不是可选值之一" in wrong.json()["message"]["custom.grade"][0], wrong.text()
    changed = api.put(
        f"{ui.base_url}/api/v1/customer/{pk}",
        data=json.dumps({"custom": {"grade": "B"}}),
        headers=headers,
    )
    assert changed.status == 200, changed.text()
    assert changed.json()["result"]["custom"] == {"wechat_id": "wx_szgyy88", "grade": "B"}
    return int(pk)


def test_admin_adds_fields_and_a_rep_uses_them_without_a_restart(ui: UI) -> None:
    try:
        _admin_adds_fields(ui)
        log_in(ui, REP, REP_PASSWORD)
        _rep_fills_the_form(ui)
        _rep_filters_the_list(ui)
        pk = _rep_uses_the_api(ui)
        ui.open_360(pk)
        details = ui.page.locator("#crm-custom-values").inner_text()
        assert "微信号" in details and "wx_szgyy88" in details and "B 级" in details, details
    except BaseException:
        ui.screenshot_on_failure()
        raise
    foreign = ui.traffic.foreign_requests()
    assert not foreign, f"requests left this machine: {foreign}"
    assert not ui.traffic.errors, "\n".join(ui.traffic.errors)
