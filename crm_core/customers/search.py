"""How customer and contact columns are searched by prefix: from what users type to the form
the column stores, so "starts with" is one index range (see :mod:`crm_core.web.search`)."""

from __future__ import annotations

from ..web.search import PrefixNormaliser
from .validation import phone_search_prefix


def code_search_prefix(typed: str) -> str | None:
    """Customer codes are stored upper-case: ``c0012`` searches ``C0012``."""
    return typed.strip().upper() or None


CUSTOMER_PREFIX_SEARCH: dict[str, PrefixNormaliser] = {
    "code": code_search_prefix,
    "phone": phone_search_prefix,
}
CONTACT_PREFIX_SEARCH: dict[str, PrefixNormaliser] = {
    "mobile": phone_search_prefix,
    "phone": phone_search_prefix,
}
