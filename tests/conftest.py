"""Fixtures come from crm_core.testing (loaded as a pytest plugin through its entry point)."""

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from plugins_support import plugin_site, plugin_wheels  # noqa: F401 - fixtures of plugin tests


@pytest.fixture(scope="session")
def crm_plugins() -> str:
    """The core's own tests run without plugins, whatever is pip-installed in the environment
    (the plugin tests install some for the session and build apps of their own)."""
    return ""


class Mailbox:
    """What a test SMTP server received: the envelopes, in order."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server (aiosmtpd) on a free local port: ``(mailbox, port)``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()
