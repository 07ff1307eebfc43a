"""A layout made in the designer by dragging, as an admin would, and seen by a rep.

On ``crm demo --serve`` the admin adds a customer layout for 销售代表 (Administration →
页面布局), drags 名称 and 电话 into a new section 基本信息 and moves it first, drags 信用额度
back to the available fields (hidden), drags 客户等级 into the list before 城市, takes 更新时间
out of the list with its button, sorts by name and saves. A demo rep then sees the form, the
360° page and the list that way.
"""

from __future__ import annotations

import re

import pytest
from browser_support import UI, log_in, log_out, submit

pytestmark = pytest.mark.browser

REP, REP_PASSWORD = "wangfang", "demo1234"  # a demo sales rep (see crm_core.demo)


def _drag(ui: UI, source: str, target: str) -> None:
    """Drag with the mouse, as a person would (HTML5 drag and drop)."""
    ui.page.drag_and_drop(source, target)


def _admin_designs_the_reps_layout(ui: UI) -> None:
    page = ui.page
    # A tall window: the designer lists every field of customers, and a drag stays in view.
    page.set_viewport_size({"width": 1280, "height": 1800})
    log_in(ui)
    ui.goto("/layouts/add")
    page.select_option("#model", "Customer")
    page.select_option("#role", label="销售代表")
    submit(ui)
    assert re.search(r"/layouts/design/\d+$", page.url), page.url
    assert page.locator("#crm-layout-sections li[data-name=credit_limit]").count() == 1

    page.locator("#crm-layout-add-section").click()
    new = page.locator('.crm-layout-section[data-index="1"]')
    new.locator(".crm-layout-title-zh").fill("基本信息")
    new.locator(".crm-layout-title-en").fill("Basics")
    page.locator('[data-focus="section-up-1"]').click()  # the keyboard's way: a button
    first = page.locator('.crm-layout-section[data-index="0"]')
    assert first.locator(".crm-layout-title-zh").input_value() == "基本信息"
    end = '.crm-layout-section[data-index="0"] .crm-layout-drop-end'
    _drag(ui, '.crm-layout-section[data-index="1"] li[data-name="name"]', end)
    _drag(ui, '.crm-layout-section[data-index="1"] li[data-name="phone"]', end)
    assert first.locator("li[data-name]").evaluate_all(
        "items => items.map(i => i.dataset.name)"
    ) == ["name", "phone"]

    _drag(
        ui,
        '#crm-layout-sections li[data-name="credit_limit"]',
        "#crm-layout-available .crm-layout-drop-end",
    )
    assert page.locator("#crm-layout-available li[data-name=credit_limit]").count() == 1
    _drag(
        ui,
        '#crm-layout-columns-available li[data-name="tier"]',
        '#crm-layout-columns li[data-name="city"]',
    )
    page.locator('[data-focus="column-remove-updated_at"]').click()
    columns = page.locator("#crm-layout-columns li[data-name]").evaluate_all(
        "items => items.map(i => i.dataset.name)"
    )
    assert columns.index("tier") == columns.index("city") - 1 and "updated_at" not in columns
    page.select_option("#crm-layout-order-column", "name")
    page.select_option("#crm-layout-order-direction", "asc")
    page.locator("#crm-layout-save").click()
    saved = page.locator("#crm-layout-messages .alert-success")
    saved.wait_for()
    assert "布局已保存" in saved.inner_text()
    log_out(ui)


def _rep_sees_it(ui: UI) -> None:
    page = ui.page
    log_in(ui, REP, REP_PASSWORD)
    ui.goto("/customers/add")
    first = page.locator(".panel-group").first
    assert first.locator("a.accordion-toggle").inner_text().strip() == "基本信息"
    labels = first.locator("label").evaluate_all("items => items.map(i => i.htmlFor)")
    assert labels == ["name", "phone"], labels
    assert page.locator("#credit_limit").count() == 0

    ui.goto("/customers/list/")
    table = page.locator("table.table-hover").last
    heads = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    assert "更新时间" not in heads and "信用额度" not in heads, heads
    assert heads.index("客户等级") == heads.index("城市") - 1, heads
    names = [
        row.locator("td").nth(heads.index("名称")).inner_text().strip()
        for row in table.locator("tbody tr").all()
    ]
    assert names and names == sorted(names), names

    link = table.locator("tbody tr").first.locator("a[href*='/show/']").first
    link.click()
    page.wait_for_load_state()
    ui.last_360_url = page.url
    sections = page.locator("#crm-record-sections .panel-heading").all_inner_texts()
    assert sections[0].strip() == "基本信息", sections
    assert "信用额度" not in page.locator("#crm-record-sections").inner_text()


def test_admin_drags_a_layout_together_and_a_rep_sees_it(ui: UI) -> None:
    try:
        _admin_designs_the_reps_layout(ui)
        _rep_sees_it(ui)
    except BaseException:
        ui.screenshot_on_failure()
        raise
    foreign = ui.traffic.foreign_requests()
    assert not foreign, f"requests left this machine: {foreign}"
    assert not ui.traffic.errors, "\n".join(ui.traffic.errors)
