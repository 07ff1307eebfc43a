"""Encryption at rest of the custom fields an admin marks as encrypted.

A custom field definition with ``encrypted`` set (text, long text, phone, e-mail and web address
fields only) has its values stored encrypted with AES-256-GCM under the current key of
``CRM_ENCRYPTION_KEYS`` (:mod:`crm_core.security.keyring`). The stored form of a value names
its format and key, so reading never needs the definitions::

    enc:v1:<key id>:<URL-safe base64 of the 12-byte nonce + ciphertext + tag>

The plaintext is the value's JSON text; the associated data is ``<model>\\x1f<field>``, so a
stored value copied into another field or record type does not decrypt.

The work is done by the custom values' column type (:mod:`crm_core.lowcode.column`): its write
hook encrypts (:func:`protect`), its read hook decrypts (:func:`reveal`), for every ORM or Core
statement. Which fields are encrypted is a map per app (model -> field names), read from the
definitions whenever a flush checks custom values (so every ORM write follows the definitions
of that moment) and at start-up. Exact search goes through the blind index
(:mod:`crm_core.security.blind_index`); rotation and the pass after an admin marks or unmarks a
field are in :mod:`crm_core.security.rotation`.

A value that cannot be decrypted (its key is no longer configured, or the stored text was
altered) does not break a page: it reads as an :class:`Unreadable` marker ("unreadable
(encryption key k1)"), an error is logged once per field and key, and saving the record writes
the stored form back unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from flask import Flask, current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import event, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import CrmError, FieldError
from ..lowcode import column as custom_column_type
from ..lowcode import fields
from .keyring import Keyring, parse

log = logging.getLogger(__name__)

PREFIX = "enc:v1:"
CONFIG_KEY = "CRM_ENCRYPTION_KEYS"
#: The kinds of field that may be encrypted: their values are text compared as a whole.
ALLOWED_KINDS = ("text", "long_text", "phone", "email", "url")
NONCE_BYTES = 12
_STATE_KEY = "crm_encryption"


class EncryptionUnavailable(CrmError):
    """A value of an encrypted field is written while no encryption key is configured."""

    status = 503


class Unreadable(str):
    """A stored value that cannot be decrypted, read as a marker naming its key.

    It is a ``str`` (the marker), so pages, forms and JSON show it; it keeps the stored form,
    which is what is written back when the record is saved.
    """

    stored: str
    key_id: str

    def __new__(cls, stored: str, key_id: str) -> Unreadable:
        obj = super().__new__(cls, _("Unreadable (encryption key %(key)s)", key=key_id))
        obj.stored = stored
        obj.key_id = key_id
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (Unreadable, (self.stored, self.key_id))

    def __deepcopy__(self, _memo: Any) -> Unreadable:
        return self


@dataclass
class EncryptionState:
    """One app's keys (from its configuration) and its map of encrypted fields."""

    config: Mapping[str, Any]
    encrypted: dict[str, frozenset[str]] = field(default_factory=dict)
    reported: set[tuple[str, str, str]] = field(default_factory=set)

    def keyring(self) -> Keyring:
        return parse(self.config.get(CONFIG_KEY) or None)

    def fields_of(self, model: str) -> frozenset[str]:
        """The encrypted fields of ``model`` (its class name), as last read."""
        return self.encrypted.get(model, frozenset())

    def note(self, model: str, definitions: list[Any]) -> None:
        """Remember which of ``model``'s definitions (all of them, active or not) encrypt."""
        self.encrypted[model] = frozenset(d.name for d in definitions if d.encrypted)

    def forget(self) -> None:
        """Drop the map (it is read again on the next write of each model)."""
        self.encrypted.clear()


_last_state: list[EncryptionState] = []  # for code that runs outside any app context


def current_state() -> EncryptionState:
    """The state of the current app; outside an app context, that of the last app built (or
    the environment's keys with nothing marked)."""
    if has_app_context():
        found = current_app.extensions.get(_STATE_KEY)
        if found is not None:
            return found  # type: ignore[no-any-return]
    if _last_state:
        return _last_state[-1]
    return EncryptionState({CONFIG_KEY: os.environ.get(CONFIG_KEY)})


def state_of(app: Flask) -> EncryptionState:
    return app.extensions[_STATE_KEY]  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- one value


def _associated_data(model: str, name: str) -> bytes:
    return f"{model}\x1f{name}".encode()


def is_stored_form(value: Any) -> bool:
    """Whether ``value`` is an encrypted value as stored (``enc:v1:…``)."""
    return isinstance(value, str) and not isinstance(value, Unreadable) and value[:7] == PREFIX


def key_id_of(stored: str) -> str | None:
    """The key id a stored value names, or ``None`` when it is not one."""
    if not is_stored_form(stored):
        return None
    key_id, sep, _rest = stored[len(PREFIX) :].partition(":")
    return key_id if sep else None


def encrypt_value(ring: Keyring, model: str, name: str, value: Any) -> str:
    """``value`` of field ``name`` of ``model`` in its stored form, under the current key."""
    key_id = ring.current_id
    if key_id is None:
        raise EncryptionUnavailable(
            _(
                "No encryption key is configured (CRM_ENCRYPTION_KEYS): cannot store %(field)s.",
                field=name,
            )
        )
    cipher = ring.cipher(key_id)
    assert cipher is not None
    nonce = os.urandom(NONCE_BYTES)
    plain = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    sealed = cipher.encrypt(nonce, plain, _associated_data(model, name))
    text = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return f"{PREFIX}{key_id}:{text}"


def decrypt_value(ring: Keyring, model: str, name: str, stored: str) -> Any:
    """The value a stored form holds, or an :class:`Unreadable` marker (logged once)."""
    key_id, _sep, text = stored[len(PREFIX) :].partition(":")
    cipher = ring.cipher(key_id)
    if cipher is None:
        return _unreadable(model, name, stored, key_id, "its key is not configured")
    try:
        blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        plain = cipher.decrypt(
            blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated_data(model, name)
        )
        return json.loads(plain)
    except (InvalidTag, binascii.Error, ValueError):
        return _unreadable(model, name, stored, key_id, "it does not match its key")


def _unreadable(model: str, name: str, stored: str, key_id: str, reason: str) -> Unreadable:
    state = current_state()
    seen = (f"{model}.{name}", key_id, reason)
    if seen not in state.reported:
        state.reported.add(seen)
        log.error(
            "an encrypted value of %s.%s (key %s) cannot be read: %s", model, name, key_id, reason
        )
    return Unreadable(stored, key_id or "?")


# --------------------------------------------------------------------------- column hooks


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def protect(model: str, values: dict[str, Any]) -> dict[str, Any]:
    """The write hook: values of encrypted fields in their stored form; unreadable values as
    they were stored."""
    names = current_state().fields_of(model)
    if not names and not any(isinstance(v, Unreadable) for v in values.values()):
        return values
    ring = current_state().keyring()
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, Unreadable):
            out[name] = value.stored
        elif name in names and not _empty(value):
            out[name] = encrypt_value(ring, model, name, value)
        else:
            out[name] = value
    return out


def reveal(model: str, values: dict[str, Any]) -> dict[str, Any]:
    """The read hook: stored forms decrypted, whatever the definitions say now."""
    if not any(is_stored_form(v) for v in values.values()):
        return values
    ring = current_state().keyring()
    return {
        name: decrypt_value(ring, model, name, value) if is_stored_form(value) else value
        for name, value in values.items()
    }


# --------------------------------------------------------------------------- definitions


def encryption_errors(kind: str, ring: Keyring) -> list[str]:
    """Why a field of ``kind`` may not be marked encrypted now (empty when it may)."""
    if kind not in ALLOWED_KINDS:
        return [_("Only text, long text, phone, e-mail and web address fields can be encrypted.")]
    if not ring:
        return [_("No encryption key is configured (CRM_ENCRYPTION_KEYS).")]
    return []


def _note_definitions(_session: Session, model: str, definitions: list[Any]) -> None:
    current_state().note(model, definitions)


def _mark_changed(defn: Any, new: bool) -> bool:
    """Whether ``defn``'s ``encrypted`` mark changes in this flush."""
    if new:
        return bool(defn.encrypted)
    history = inspect(defn).attrs.encrypted.history
    if not history.has_changes():
        return False
    return not history.deleted or bool(history.deleted[0]) != bool(defn.encrypted)


def _changed(obj: Any, column: str) -> bool:
    return bool(inspect(obj).attrs[column].history.has_changes())


def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    """Refuse a definition that may not be encrypted, and a value of an encrypted field while
    no key is configured, with errors naming the field."""
    state = current_state()
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, fields.FieldDefinition):
            problems = encryption_errors(obj.kind, state.keyring()) if obj.encrypted else []
            if problems:
                raise FieldError({"encrypted": problems})
            if _mark_changed(obj, obj in session.new):
                obj.encryption_pending = True  # the stored values follow (rotation.sync_marked)
            continue
        column = fields.custom_column(type(obj))
        if column is None or state.keyring():
            continue
        names = state.fields_of(type(obj).__name__)
        if not names or (obj not in session.new and not _changed(obj, column)):
            continue
        values = getattr(obj, column, None)
        if isinstance(values, dict):
            missing = [
                n
                for n in names
                if not _empty(values.get(n)) and not isinstance(values.get(n), Unreadable)
            ]
            if missing:
                message = _("No encryption key is configured (CRM_ENCRYPTION_KEYS).")
                raise FieldError({f"{column}.{n}": [message] for n in sorted(missing)})


def load_map(app: Flask) -> None:
    """Read every model's encrypted fields (at start-up; a database that is not migrated yet
    just has none)."""
    state = state_of(app)
    engine = app.extensions["crm_db"].engine
    query = select(fields.FieldDefinition.model, fields.FieldDefinition.name).where(
        fields.FieldDefinition.encrypted.is_(True)
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError:
        return
    found: dict[str, set[str]] = {}
    for model, name in rows:
        found.setdefault(model, set()).add(name)
    state.encrypted.update({model: frozenset(names) for model, names in found.items()})


def install(app: Flask) -> None:
    """Encrypt and decrypt custom values of ``app`` (the hooks are installed once per process,
    the keys and the map are the app's). Raises :class:`~.keyring.KeyringError` when
    ``CRM_ENCRYPTION_KEYS`` is malformed, so a bad key stops the start instead of a write."""
    from . import blind_index

    state = EncryptionState(app.config)
    state.keyring()
    app.extensions[_STATE_KEY] = state
    _last_state[:] = [state]
    if protect not in custom_column_type.BIND_HOOKS:
        custom_column_type.BIND_HOOKS.append(protect)
    if reveal not in custom_column_type.RESULT_HOOKS:
        custom_column_type.RESULT_HOOKS.append(reveal)
    if _note_definitions not in fields.DEFINITIONS_READ:
        fields.DEFINITIONS_READ.append(_note_definitions)
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
    blind_index.install()
    load_map(app)


def exact_match(model_cls: type, name: str, raw_value: Any) -> Any:
    """SQL criterion: records of ``model_cls`` whose custom field ``name`` equals what the user
    typed (normalised as the field stores it). See :func:`.blind_index.exact_match`."""
    from .blind_index import exact_match as match

    return match(model_cls, name, raw_value)
