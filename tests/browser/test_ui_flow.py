"""The acceptance flow in a real browser, tried as a new user would on a fresh clone.

``crm demo --serve`` (the README's first command) serves the CRM with demo data on a fresh SQLite
database; Debian's chromium, driven by Playwright, logs in, switches to English and back to 中文,
searches customers, opens a 360° page, and creates and edits a customer. Every request must stay
on this machine and the browser console must stay free of errors.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Chromium asks every site for /favicon.ico and logs the 404 as a console error; the CRM has no
# favicon yet. Only that one error is tolerated.
TOLERATED_ERROR_URLS = ("/favicon.ico",)
SERVER_START_TIMEOUT = 60
STEP_TIMEOUT_MS = 10_000
NEW_NAME = "苏州工业园区浏览器测试精密机械有限公司"


def _unavailable(message: str) -> None:
    """Skip, or fail when CI demands every test environment (``CRM_TEST_REQUIRE_ALL=1``)."""
    if os.environ.get("CRM_TEST_REQUIRE_ALL") == "1":
        pytest.fail(f"{message} and CRM_TEST_REQUIRE_ALL=1", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """Debian's chromium (Playwright never downloads a browser here)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    path = shutil.which("chromium")
    if path is None:
        _unavailable("Debian's chromium is not installed (apt-get install -y chromium)")
    assert path is not None
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _crm_command() -> str:
    beside_python = Path(sys.executable).with_name("crm")
    found = str(beside_python) if beside_python.exists() else shutil.which("crm")
    if found is None:
        pytest.fail("the `crm` command is not installed (pip install -e '.[test]')")
    return found


@pytest.fixture(scope="module")
def demo_server(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``crm demo --serve`` in a fresh directory, as the README runs it; yields its base URL."""
    workdir = tmp_path_factory.mktemp("crm-demo")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "FLASK_"))}
    env.update(
        CRM_INSTANCE_DIR=str(workdir / "instance"), PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8"
    )
    log_path = workdir / "server.log"
    command = [_crm_command(), "demo", "--serve", "--port", str(port), "--customers", "200"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`crm demo --serve` exited with {proc.returncode}:\n{_read(log_path)}")
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"`crm demo --serve` did not listen on port {port} within "
                    f"{SERVER_START_TIMEOUT} s:\n{_read(log_path)}"
                )
            time.sleep(0.2)
        assert "admin / admin" in _read(log_path), "the demo does not print the admin login"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Traffic:
    """What the browser did besides rendering: requests, console errors, script errors."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        if urlsplit(url).path in TOLERATED_ERROR_URLS:
            return
        self.errors.append(f"console: {message.text} ({url})")

    def foreign_requests(self) -> list[str]:
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("data", "blob", "about")
            and urlsplit(url).hostname not in LOCAL_HOSTS
        ]


@dataclass
class UI:
    """The browser page, the server it talks to, and what it recorded."""

    page: Any
    base_url: str
    tmp_path: Path
    traffic: Traffic = field(default_factory=Traffic)
    last_360_url: str | None = None

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def screenshot_on_failure(self) -> None:
        """Save the page at failure and the last 360° page opened, and say where they are."""
        current = self.tmp_path / "failure-page.png"
        with suppress(Exception):
            self.page.screenshot(path=str(current), full_page=True)
            print(f"screenshot of the page at failure: {current}")
        if self.last_360_url:
            page360 = self.tmp_path / "failure-customer360.png"
            with suppress(Exception):
                self.page.goto(self.last_360_url)
                self.page.screenshot(path=str(page360), full_page=True)
                print(f"screenshot of the last 360° page: {page360}")

    def open_360(self, pk: int) -> None:
        self.last_360_url = f"{self.base_url}/customer/{pk}"
        self.page.goto(self.last_360_url)


@pytest.fixture
def ui(chromium_path: str, demo_server: str, tmp_path: Path) -> Iterator[UI]:
    """A fresh browser page (English-speaking browser, to show the CRM's own default locale)
    whose traffic is recorded; screenshots go to ``tmp_path`` when the test fails."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        ui = UI(page=page, base_url=demo_server, tmp_path=tmp_path)
        context.on("request", lambda request: ui.traffic.requests.append(request.url))
        page.on("console", ui.traffic.on_console)
        page.on("pageerror", lambda exc: ui.traffic.errors.append(f"page error: {exc}"))
        try:
            yield ui
        finally:
            context.close()
            browser.close()


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


def _submit(ui: UI) -> None:
    ui.page.locator("form button[type=submit]").click()
    ui.page.wait_for_load_state()


def _log_in(ui: UI) -> None:
    ui.goto("/")
    ui.page.locator(".navbar a[href='/login/']").click()
    ui.page.fill("#username", "admin")
    ui.page.fill("#password", "admin")
    ui.page.locator("form[name=login] input[type=submit]").click()
    ui.page.wait_for_load_state()
    assert "/login" not in ui.page.url, "admin/admin (printed by the demo) did not log in"


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
        page.fill(selector, value)
    _submit(ui)
    error = page.locator("tr:has(#phone) .alert-danger")
    assert error.count() == 1, "the invalid phone has no error next to its field"
    assert "12345" in error.inner_text(), error.inner_text()
    for selector, value in typed.items():
        assert page.locator(selector).input_value() == value, f"{selector} lost what was typed"
    page.fill("#phone", "0512-66001234")
    _submit(ui)
    assert "/customers/add" not in page.url, "the corrected form was not accepted"
    ui.goto(f"/customers/list/?_flt_3_name={NEW_NAME}")  # 名称 等于 (equals)
    ids = _row_ids(ui)
    assert len(ids) == 1, f"{NEW_NAME} should be listed once, found {ids}"
    ui.open_360(ids[0])
    text = page.locator("#crm-customer-360").inner_text()
    assert NEW_NAME in text and "0512 6600 1234" in text and "苏州市" in text, text
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
    _submit(ui)
    assert f"/customers/edit/{pk}" not in page.url, "the edit form was not accepted"
    ui.open_360(pk)
    text = page.locator("#crm-customer-360 .row").first.inner_text()  # the details
    assert "无锡市" in text and "苏州市" not in text and "139 1234 5678" in text, text
    history = page.locator("#crm-history").inner_text()  # the audit entries, newest first
    assert "苏州市 → 无锡市" in history, history


def test_new_user_flow(ui: UI) -> None:
    try:
        _log_in(ui)
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
