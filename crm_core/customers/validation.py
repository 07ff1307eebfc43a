"""Normalising and checking phone numbers and e-mail addresses.

Used by the models (``@validates``), so the same rules hold for forms, the API, imports and the
CLI. Messages are translated lazily, in the user's language.
"""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
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
    try:
        number = phonenumbers.parse(str(value), region)
    except phonenumbers.NumberParseException:
        raise FieldError({field: [str(_l("Not a phone number: %(value)s", value=value))]}) from None
    if not phonenumbers.is_valid_number(number):
        raise FieldError({field: [str(_l("Not a valid phone number: %(value)s", value=value))]})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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
    try:
        return validate_email(str(value).strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise FieldError(
            {field: [str(_l("Not a valid e-mail address: %(value)s", value=value))]}
        ) from None


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
