"""The encryption keys of an installation, from ``CRM_ENCRYPTION_KEYS``.

The setting is a comma list of ``<key id>:<key>`` items, each key 32 random bytes in URL-safe
base64 (``crm keys encryption-new`` prints one)::

    CRM_ENCRYPTION_KEYS="k2:9sX...,k1:Qm4..."

The first key is the current one: every value is encrypted with it. The others are kept only to
read values written before the last rotation (``crm keys rotate``). Key ids are 1-16 letters,
digits, ``_`` or ``-``; a stored value names the id of its key.

Each key also gives, through HKDF-SHA256, the key of the blind index
(:mod:`crm_core.security.blind_index`), so search and encryption rotate together.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
KEY_BYTES = 32
_INDEX_INFO = b"crm blind index v1"


class KeyringError(ValueError):
    """``CRM_ENCRYPTION_KEYS`` is not a valid list of keys."""


class Keyring:
    """The keys by id, the current one first; empty when encryption is not configured."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        self.ids = tuple(kid for kid, _key in keys)
        self._ciphers = {kid: AESGCM(key) for kid, key in keys}
        self._index_keys = {kid: _derive_index_key(key) for kid, key in keys}

    def __bool__(self) -> bool:
        return bool(self.ids)

    @property
    def current_id(self) -> str | None:
        """The id of the key new values are encrypted with."""
        return self.ids[0] if self.ids else None

    def cipher(self, key_id: str) -> AESGCM | None:
        """AES-256-GCM with key ``key_id``, or ``None`` for an id that is not configured."""
        return self._ciphers.get(key_id)

    def index_key(self, key_id: str) -> bytes | None:
        """The blind-index HMAC key derived from key ``key_id``."""
        return self._index_keys.get(key_id)


def _derive_index_key(key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INDEX_INFO).derive(key)


def _decode_key(key_id: str, text: str) -> bytes:
    padded = text.strip().replace("-", "+").replace("_", "/")
    padded += "=" * (-len(padded) % 4)
    try:
        key = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"key {key_id!r} is not base64") from None
    if len(key) != KEY_BYTES:
        raise KeyringError(f"key {key_id!r} has {len(key)} bytes instead of {KEY_BYTES}")
    return key


@lru_cache(maxsize=8)
def parse(text: str | None) -> Keyring:
    """The keyring of a ``CRM_ENCRYPTION_KEYS`` value (empty for ``None`` or blank); raises
    :class:`KeyringError` naming the faulty item."""
    keys: list[tuple[str, bytes]] = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key_id, sep, material = item.strip().partition(":")
        if not sep or not KEY_ID.match(key_id):
            raise KeyringError(
                "each item of CRM_ENCRYPTION_KEYS is <key id>:<base64 key>, the id being 1-16 "
                f"of A-Z a-z 0-9 _ - (got {key_id[:20]!r})"
            )
        if any(key_id == known for known, _key in keys):
            raise KeyringError(f"key id {key_id!r} appears twice in CRM_ENCRYPTION_KEYS")
        keys.append((key_id, _decode_key(key_id, material)))
    return Keyring(keys)


def new_key_line(key_id: str) -> str:
    """``<key id>:<32 random bytes in URL-safe base64>``, an item for ``CRM_ENCRYPTION_KEYS``."""
    if not KEY_ID.match(key_id):
        raise KeyringError("a key id is 1-16 of A-Z a-z 0-9 _ -")
    material = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")
    return f"{key_id}:{material}"
