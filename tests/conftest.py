"""Fixtures come from crm_core.testing (loaded as a pytest plugin through its entry point)."""

import pytest
from plugins_support import plugin_site, plugin_wheels  # noqa: F401 - fixtures of plugin tests


@pytest.fixture(scope="session")
def crm_plugins() -> str:
    """The core's own tests run without plugins, whatever is pip-installed in the environment
    (the plugin tests install some for the session and build apps of their own)."""
    return ""
