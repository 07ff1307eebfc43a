"""Fixtures come from crm_core.testing (loaded as a pytest plugin through its entry point)."""
