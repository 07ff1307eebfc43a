"""API keys for integrations: a key belongs to a user and is scoped to one of the user's roles.

Keys are Flask-AppBuilder's (table ``ab_api_key``): only hashes are stored, the key itself is
shown once when it is made. A request sends it as ``Authorization: ApiKey <key>``,
``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` to any REST API; it then acts as the
key's user with the permissions of the key's role alone. Revoking a key, deactivating its user
or passing its expiry stops it at once. Making and revoking keys is audited.

Keys are 256 random bits, so a fast salted hash protects them as well as a slow one would, and
keeps each API call fast; the lookup column holds their SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from flask import g, has_request_context, request
from flask_appbuilder.security.sqla.models import ApiKey, Role
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..db import session, utcnow
from .audit import write_entry
from .lockout import AUDIT_MODEL

PREFIX = "crm_"
HASH_METHOD = "pbkdf2:sha256:1000"
#: ``last_used_on`` is written at most this often per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_ROLE_KEY = "crm_api_key_role"


class ApiKeyError(ValueError):
    """A key cannot be made as asked (the message says why, for forms and the CLI)."""


def lookup_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def key_from_request() -> str | None:
    """The API key a request sends, if any."""
    if not has_request_context():
        return None
    sent = request.headers.get("X-API-Key", "").strip()
    if sent:
        return sent
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "apikey" and token:
        return token
    if scheme.lower() == "bearer" and token.startswith(PREFIX):
        return token
    return None


def is_usable(key: ApiKey) -> bool:
    now = utcnow()
    return bool(
        key.active
        and key.revoked_on is None
        and (key.expires_on is None or key.expires_on > now)
        and key.user is not None
        and key.user.is_active
    )


def authenticate(raw: str) -> Any:
    """The user of a valid, usable key (and this request acts as that user with the key's
    role), else ``None``."""
    s = session()
    key = s.scalar(select(ApiKey).where(ApiKey.lookup_hash == lookup_hash(raw)))
    if key is None or not check_password_hash(key.key_hash, raw) or not is_usable(key):
        return None
    now = utcnow()
    if key.last_used_on is None or now - key.last_used_on >= LAST_USED_RESOLUTION:
        key.last_used_on = now
        s.commit()
    g.user = key.user
    g._api_key_user = True
    setattr(g, _ROLE_KEY, key.scopes or "")
    return key.user


def request_role() -> str | None:
    """The role an API key limits this request to (``""``: a key without a role, which may do
    nothing), or ``None`` when the request did not come with a key."""
    if not has_request_context():
        return None
    role: str | None = g.get(_ROLE_KEY)
    return role


def create_key(user: Any, role: str, name: str, days: int | None = None) -> tuple[ApiKey, str]:
    """A new key of ``user`` limited to ``role`` (one of the user's roles), valid for ``days``
    (``None``: until revoked). Returns the row and the key, which is not stored. The caller
    commits."""
    if not name.strip():
        raise ApiKeyError(gettext("Give the key a name."))
    if role not in {r.name for r in user.roles}:
        raise ApiKeyError(
            gettext("%(user)s does not have the role %(role)s.", user=user.username, role=role)
        )
    raw = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    key = ApiKey(
        name=name.strip()[:256],
        key_hash=generate_password_hash(raw, method=HASH_METHOD),
        lookup_hash=lookup_hash(raw),
        key_prefix=PREFIX,
        user_id=user.id,
        scopes=role,
        active=True,
        created_on=now,
        expires_on=now + timedelta(days=days) if days else None,
    )
    s = session()
    s.add(key)
    s.flush()
    write_entry(
        s, AUDIT_MODEL, user.id, "key_new", {"api_key": [None, key.name], "role": [None, role]}
    )
    return key, raw


def revoke(key: ApiKey) -> bool:
    """Stop ``key`` now; False when it was revoked already. The caller commits."""
    if key.revoked_on is not None:
        return False
    key.revoked_on = utcnow()
    key.active = False
    write_entry(session(), AUDIT_MODEL, key.user_id, "key_revoke", {"api_key": [key.name, None]})
    return True


def role_names() -> list[str]:
    return list(session().scalars(select(Role.name).order_by(Role.name)))
