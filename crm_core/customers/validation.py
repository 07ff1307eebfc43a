"""Normalising and checking phone numbers and e-mail addresses.

Used by the models (``@validates``), so the same rules hold for forms, the API, imports and the
CLI. Messages are translated lazily, in the user's language.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from flask_babel import lazy_gettext as _l

from ..errors import FieldError

DEFAULT_REGION = "CN"


def normalise_phone(field: str, value: str | None, region: str = DEFAULT_REGION) -> str | None:
    """Return ``value`` in E.164 (``+8613812345678``), ``None`` for blank, or raise FieldError.

    Accepts what people type: spaces, dashes, brackets, a leading 0 area code (021-62345678) or
    +86; numbers from other countries need their ``+`` prefix.
    """
    if value is None or not str(value).strip():
        return None
    if region == DEFAULT_REGION:
        mobile = _CN_MOBILE.fullmatch(_PHONE_NOISE.sub("", str(value)))
        if mobile and _cn_mobile_prefix_valid(mobile.group(1)[:7]):
            return "+86" + mobile.group(1)
    try:
        number = phonenumbers.parse(str(value), region)
    except phonenumbers.NumberParseException:
        raise FieldError({field: [str(_l("Not a phone number: %(value)s", value=value))]}) from None
    if not phonenumbers.is_valid_number(number):
        raise FieldError({field: [str(_l("Not a valid phone number: %(value)s", value=value))]})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Chinese mobile numbers, by far the most common in imports, skip the full parse: the shape is
# checked here and the validity of the number's first seven digits (its allocated block) once.
_PHONE_NOISE = re.compile(r"[\s\-()（）]")
_CN_MOBILE = re.compile(r"(?:\+86|0086|86)?(1\d{10})")


@lru_cache(maxsize=20_000)
def _cn_mobile_prefix_valid(prefix: str) -> bool:
    sample = phonenumbers.parse(prefix + "0000", "CN")
    return bool(phonenumbers.is_valid_number(sample))


def display_phone(value: str | None) -> str:
    """How a stored E.164 number is shown: national format for China, international otherwise."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    if number.country_code == 86:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalise_email(field: str, value: str | None) -> str | None:
    """Return the normalised address (lower-case domain), ``None`` for blank, or raise FieldError.

    Syntax only: no DNS look-up, so it works offline and is fast enough for imports.
    """
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    local, at, domain = text.rpartition("@")
    if at and len(text) <= 254 and len(local) <= 64 and _LOCAL.fullmatch(local):
        checked = _domain(domain)
        if checked is not None:
            if local.lower() in _ROLE_MAILBOXES:  # info@, sales@… are case-insensitive
                local = local.lower()
            return f"{local}@{checked}"
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise FieldError(
            {field: [str(_l("Not a valid e-mail address: %(value)s", value=value))]}
        ) from None


# Plain addresses skip the full check: the local part's shape is checked here, the domain
# (few distinct ones: qq.com, 163.com…) once by email_validator.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_ROLE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


@lru_cache(maxsize=5_000)
def _domain(domain: str) -> str | None:
    """The normalised domain, or ``None`` when the full check must decide."""
    try:
        return validate_email("a@" + domain, check_deliverability=False).domain
    except EmailNotValidError:
        return None


def phone_search_prefix(text: str) -> str | None:
    """The stored-form prefix to search for when a user types the start of a phone number."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) < 3:
        return None
    if text.strip().startswith("+"):
        return "+" + digits
    if digits.startswith("0"):
        return "+86" + digits[1:]
    return "+86" + digits
