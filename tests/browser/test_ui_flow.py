"""The acceptance flow in a real browser, tried as a new user would on a fresh clone.

``crm demo --serve`` (the README's first command) serves the CRM with demo data on a fresh SQLite
database; Debian's chromium, driven by Playwright, logs in, switches to English and back to 中文,
searches customers, opens a 360° page, and creates and edits a customer. Every request must stay
on this machine and the browser console must stay free of errors.
"""

from __future__ import annotations

import re

import pytest
from browser_support import UI, log_in, submit

pytestmark = pytest.mark.browser

NEW_NAME = "苏州工业园区浏览器测试精密机械有限公司"


def _navbar(ui: UI) -> str:
    return str(ui.page.locator(".navbar").first.inner_text())


def _record_count(ui: UI) -> int:
    """The list's 记录数 (record count)."""
    text = ui.page.locator("strong", has_text="记录数").locator("..").inner_text()
    match = re.search(r"\d+", text)
    assert match, text
    return int(match[0])


def _row_ids(ui: UI) -> list[int]:
    """Customer ids of the list's rows, from their 查看 (show) links."""
    hrefs = ui.page.locator("table a[href*='/customers/show/']").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    return [int(h.rstrip("/").rsplit("/", 1)[1]) for h in hrefs]


def _switch_language(ui: UI, code: str) -> None:
    ui.page.locator(".navbar-right a.dropdown-toggle:has(i.flag)").click()
    ui.page.locator(f".navbar-right a[href='/lang/{code}']").click()
    ui.page.wait_for_load_state()


def _check_languages(ui: UI) -> None:
    """zh_CN is the default whatever the browser's language; English and back via the menu."""
    assert "客户" in _navbar(ui), _navbar(ui)
    _switch_language(ui, "en")
    english = _navbar(ui)
    assert "Customers" in english and "客户" not in english, english
    _switch_language(ui, "zh_CN")
    chinese = _navbar(ui)
    assert "客户" in chinese and "Customers" not in chinese, chinese


def _search_customers(ui: UI) -> list[int]:
    """Filter the customer list on 名称 开头是 (name starts with) 上海 in FAB's search panel."""
    page = ui.page
    page.locator(".navbar a.dropdown-toggle", has_text="客户").click()
    page.locator(".navbar a[href='/customers/list/']").click()
    page.wait_for_load_state()
    total = _record_count(ui)
    assert total == 200, f"the demo should list 200 customers, the list says {total}"
    page.locator("a.accordion-toggle", has_text="搜索").click()
    page.locator("#filter_form button.dropdown-toggle", has_text="添加筛选条件").click()
    page.locator("#filter_form a.filter[name=name]", has_text="名称").click()
    operation = page.locator("#filter_form .select2-selection__rendered").first.inner_text()
    assert operation.endswith("开头是"), operation
    page.fill("#filter_form input[name=_flt_0_name]", "上海")
    page.locator("#filter_form button[type=submit]", has_text="搜索").click()
    # The click navigates: wait for the filtered list (the page before it counts as loaded).
    page.wait_for_url("**/customers/list/?*_flt_0_name=*")
    page.wait_for_load_state()
    assert "_flt_0_name=" in page.url, page.url
    names = page.locator("table.table-hover tbody tr td:nth-child(4)").all_inner_texts()
    assert names, "searching 名称 开头是 上海 found nothing"
    assert all(n.strip().startswith("上海") for n in names), names
    assert 0 < _record_count(ui) < total
    return _row_ids(ui)


def _check_360(ui: UI, ids: list[int]) -> None:
    """Open search results' 360° pages: header and contacts on each, until one has follow-ups
    on its timeline (newest first)."""
    page = ui.page
    for pk in ids[:8]:
        ui.open_360(pk)
        header = page.locator("#crm-customer-360 .page-header h2").inner_text()
        assert header.startswith("上海") and re.search(r"C\d{7}", header), header
        contacts = page.locator("#crm-contacts tr")
        assert contacts.count() >= 2, "a demo company has at least one contact"
        assert contacts.first.inner_text().split()[:2] == ["名称", "职务"]
        assert re.search(r"1\d\d \d{4} \d{4}", contacts.nth(1).inner_text())  # mobile, formatted
        assert page.locator("#crm-customer-360 h3", has_text="动态").count() == 1
        if page.locator("#crm-timeline > li").count():
            whens = page.locator("#crm-timeline .crm-when").all_inner_texts()
            assert whens == sorted(whens, reverse=True), f"timeline not newest first: {whens}"
            return
    raise AssertionError(f"none of the 360° pages of customers {ids[:8]} shows a timeline")


def _add_customer(ui: UI) -> int:
    """Add a customer with the list's + button: first with a bad phone, then corrected."""
    page = ui.page
    ui.goto("/customers/list/")
    page.locator("a[href='/customers/add']").first.click()
    page.wait_for_load_state()
    typed = {"#name": NEW_NAME, "#phone": "12345", "#city": "苏州市", "#industry": "制造业"}
    for selector, value in typed.items():
        if selector == "#industry":  # a picklist (行业): chosen, not typed
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    submit(ui)
    error = page.locator("tr:has(#phone) .alert-danger")
    assert error.count() == 1, "the invalid phone has no error next to its field"
    assert "12345" in error.inner_text(), error.inner_text()
    for selector, value in typed.items():
        assert page.locator(selector).input_value() == value, f"{selector} lost what was typed"
    page.fill("#phone", "0512-66001234")
    submit(ui)
    assert "/customers/add" not in page.url, "the corrected form was not accepted"
    ui.goto(f"/customers/list/?_flt_3_name={NEW_NAME}")  # 名称 等于 (equals)
    ids = _row_ids(ui)
    assert len(ids) == 1, f"{NEW_NAME} should be listed once, found {ids}"
    ui.open_360(ids[0])
    text = page.locator("#crm-customer-360").inner_text()
    assert NEW_NAME in text and "0512 6600 1234" in text and "苏州市" in text, text
    assert "制造业" in text, text
    assert "系统管理员" in text, "the customer's creator should own it"
    return ids[0]


def _edit_customer(ui: UI, pk: int) -> None:
    """Edit with the 360° page's 编辑 button; the change shows on the 360° page."""
    page = ui.page
    page.locator("#crm-customer-360 a", has_text="编辑").click()
    page.wait_for_load_state()
    assert page.url.rstrip("/").endswith(f"/customers/edit/{pk}"), page.url
    assert page.locator("#name").input_value() == NEW_NAME
    page.fill("#city", "无锡市")
    page.fill("#phone", "13912345678")
    submit(ui)
    assert f"/customers/edit/{pk}" not in page.url, "the edit form was not accepted"
    ui.open_360(pk)
    text = page.locator("#crm-customer-360 .row").first.inner_text()  # the details
    assert "无锡市" in text and "苏州市" not in text and "139 1234 5678" in text, text
    history = page.locator("#crm-history").inner_text()  # the audit entries, newest first
    assert "苏州市 → 无锡市" in history, history


def test_new_user_flow(ui: UI) -> None:
    try:
        log_in(ui)
        _check_languages(ui)
        ids = _search_customers(ui)
        _check_360(ui, ids)
        pk = _add_customer(ui)
        _edit_customer(ui, pk)
    except BaseException:
        ui.screenshot_on_failure()
        raise
    foreign = ui.traffic.foreign_requests()
    assert not foreign, f"requests left this machine: {foreign}"
    assert len(ui.traffic.requests) > 20, "the request recorder saw nothing"
    assert not ui.traffic.errors, "\n".join(ui.traffic.errors)
