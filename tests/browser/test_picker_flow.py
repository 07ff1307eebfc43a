"""Picking a contact's customer by typing, in a real browser.

On ``crm demo --serve`` the demo rep wangfang opens 联系人 → 新增, opens the customer picker,
types the start of one of her customers' names, picks it from what the server offers, and saves
a contact that then shows on that customer's 360° page. The contact list filtered on that
customer shows the customer's name in the filter's picker and only that customer's contacts.
No request leaves the machine and the console stays free of errors.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from browser_support import UI, log_in, submit

pytestmark = pytest.mark.browser

REP, REP_PASSWORD = "wangfang", "demo1234"  # a demo Sales Rep (华东区)
CONTACT = "欧阳明轩"


def _own_customer(ui: UI) -> tuple[int, str]:
    """A company the rep owns (the API, with the browser's session, lists her own customers
    and the pool's): its id and name."""
    query = quote("(columns:!(name,kind,owner_id),page_size:100)")
    found = ui.page.request.get(f"{ui.base_url}/api/v1/customer/?q={query}")
    assert found.status == 200, found.text()
    body: dict[str, Any] = found.json()
    owned = [
        (int(pk), str(row["name"]))
        for pk, row in zip(body["ids"], body["result"], strict=True)
        if row["owner_id"] is not None and row["kind"] == "company"
    ]
    assert owned, "the demo rep owns no company"
    return owned[0]


def _open_contact_form(ui: UI) -> None:
    page = ui.page
    page.locator(".navbar a.dropdown-toggle", has_text="客户").click()
    page.locator(".navbar a[href='/contacts/list/']", has_text="联系人").click()
    page.wait_for_load_state()
    page.locator("a[href='/contacts/add']").first.click()
    page.wait_for_load_state()
    assert page.url.rstrip("/").endswith("/contacts/add"), page.url
    options = page.locator("select#customer option").all_inner_texts()
    assert options == [""], f"the customer field lists customers: {options[:5]}"


def _pick_customer(ui: UI, pk: int, name: str) -> None:
    """Open the picker, type the start of the name, choose the customer from the results."""
    page = ui.page
    page.locator("select#customer + .select2 .select2-selection").click()
    search = page.locator(".select2-container--open .select2-search__field")
    prefix = name[:5]
    with page.expect_response(lambda r: "/pick/customer?" in r.url and "q=" in r.url) as asked:
        search.press_sequentially(prefix, delay=30)
    answer = asked.value.json()
    assert answer["results"], f"the picker found nothing for {prefix}"
    offered = page.locator(".select2-container--open .select2-results__option", has_text=name)
    offered.first.wait_for()
    texts = page.locator(".select2-container--open .select2-results__option").all_inner_texts()
    assert all(t.startswith(prefix) for t in texts), texts
    page.locator(
        ".select2-container--open .select2-results__option", has_text=re.compile(f"^{name}$")
    ).click()
    assert page.locator("select#customer").input_value() == str(pk)
    chosen = page.locator("select#customer + .select2 .select2-selection__rendered").inner_text()
    assert name in chosen, chosen


def _contact_names_on_360(ui: UI, pk: int) -> list[str]:
    ui.open_360(pk)
    rows = ui.page.locator("#crm-contacts tr")
    return [rows.nth(n).locator("td").first.inner_text().strip() for n in range(1, rows.count())]


def _filtered_list(ui: UI, pk: int, name: str) -> list[tuple[str, str]]:
    """The contact list filtered on the customer: the filter's picker shows its name; the rows
    as (contact, customer)."""
    page = ui.page
    with page.expect_response(lambda r: f"/pick/customer?id={pk}" in r.url):
        ui.goto(f"/contacts/list/?_flt_0_customer={pk}")
    picker = page.locator("#filter_form select.crm-record-picker")
    assert picker.count() == 1, "the list has no customer filter picker"
    page.locator("a.accordion-toggle", has_text="搜索").click()  # the search panel
    shown = page.locator("#filter_form select.crm-record-picker + .select2")
    shown.locator(".select2-selection__rendered", has_text=name).wait_for()
    assert picker.input_value() == str(pk)
    table = page.locator("table.table-hover:has(a[href*='/contacts/show/'])")  # not the filters'
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    name_col, customer_col = headers.index("名称") + 1, headers.index("客户") + 1
    rows = table.locator("tbody tr")
    return [
        (
            rows.nth(n).locator(f"td:nth-child({name_col})").inner_text().strip(),
            rows.nth(n).locator(f"td:nth-child({customer_col})").inner_text().strip(),
        )
        for n in range(rows.count())
    ]


def test_rep_picks_a_customer_by_typing(ui: UI) -> None:
    try:
        log_in(ui, REP, REP_PASSWORD)
        pk, name = _own_customer(ui)
        before = _contact_names_on_360(ui, pk)
        assert CONTACT not in before
        _open_contact_form(ui)
        _pick_customer(ui, pk, name)
        ui.page.fill("#name", CONTACT)
        ui.page.fill("#title", "采购经理")
        submit(ui)
        assert "/contacts/add" not in ui.page.url, "the contact was not saved"
        after = _contact_names_on_360(ui, pk)
        assert sorted(after) == sorted([*before, CONTACT]), after
        listed = _filtered_list(ui, pk, name)
        assert sorted(listed) == sorted((c, name) for c in after), listed
    except BaseException:
        ui.screenshot_on_failure()
        raise
    foreign = ui.traffic.foreign_requests()
    assert not foreign, f"requests left this machine: {foreign}"
    assert any("/pick/customer?" in url for url in ui.traffic.requests)
    assert not ui.traffic.errors, "\n".join(ui.traffic.errors)
