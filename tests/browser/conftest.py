"""Fixtures of the browser tests: Debian's chromium, a ``crm demo --serve`` per module, and a
recorded page per test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from browser_support import (
    CHROMIUM_ARGS,
    SERVER_START_TIMEOUT,
    STEP_TIMEOUT_MS,
    UI,
    crm_command,
    free_port,
    read,
    unavailable,
)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """Debian's chromium (Playwright never downloads a browser here)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[test]')")
    path = shutil.which("chromium")
    if path is None:
        unavailable("Debian's chromium is not installed (apt-get install -y chromium)")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def demo_server(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``crm demo --serve`` in a fresh directory, as the README runs it; yields its base URL."""
    workdir = tmp_path_factory.mktemp("crm-demo")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "FLASK_"))}
    env.update(
        CRM_INSTANCE_DIR=str(workdir / "instance"), PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8"
    )
    log_path = workdir / "server.log"
    command = [crm_command(), "demo", "--serve", "--port", str(port), "--customers", "200"]
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
                pytest.fail(f"`crm demo --serve` exited with {proc.returncode}:\n{read(log_path)}")
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"`crm demo --serve` did not listen on port {port} within "
                    f"{SERVER_START_TIMEOUT} s:\n{read(log_path)}"
                )
            time.sleep(0.2)
        assert "admin / admin" in read(log_path), "the demo does not print the admin login"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


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
