"""What the browser tests share: the recorded traffic, the page wrapper and small steps."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

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


def unavailable(message: str) -> None:
    """Skip, or fail when CI demands every test environment (``CRM_TEST_REQUIRE_ALL=1``)."""
    if os.environ.get("CRM_TEST_REQUIRE_ALL") == "1":
        pytest.fail(f"{message} and CRM_TEST_REQUIRE_ALL=1", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def crm_command() -> str:
    beside_python = Path(sys.executable).with_name("crm")
    found = str(beside_python) if beside_python.exists() else shutil.which("crm")
    if found is None:
        pytest.fail("the `crm` command is not installed (pip install -e '.[test]')")
    return found


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


def submit(ui: UI) -> None:
    ui.page.locator("form button[type=submit]").click()
    ui.page.wait_for_load_state()


def log_in(ui: UI, username: str = "admin", password: str = "admin") -> None:
    ui.goto("/")
    ui.page.locator(".navbar a[href='/login/']").click()
    ui.page.fill("#username", username)
    ui.page.fill("#password", password)
    ui.page.locator("form[name=login] input[type=submit]").click()
    ui.page.wait_for_load_state()
    assert "/login" not in ui.page.url, f"{username}/{password} did not log in"


def log_out(ui: UI) -> None:
    ui.goto("/logout/")
    ui.page.wait_for_load_state()
