"""Test helpers for the CRM and its plugins; the fixtures live in :mod:`crm_core.testing.plugin`,
which pytest loads automatically once ``crm-core`` is installed."""

from .contract import check_plugin_contract, schema_diff
from .databases import BACKENDS, backend_url, reachable

__all__ = ["BACKENDS", "backend_url", "check_plugin_contract", "reachable", "schema_diff"]
