"""The blind index: exact-match search on encrypted custom fields.

For each value of an encrypted field, ``crm_blind_index`` holds one row (model, field, record
id, digest): the HMAC-SHA256 of the value in its stored (normalised) form, keyed with a key
derived from the current encryption key (:mod:`crm_core.security.keyring`) and bound to the
model and field. The rows of new, changed and deleted records are written after every flush,
in the same transaction.

:func:`exact_match` turns what a user typed into a criterion: the value is normalised as the
field stores it (``138 1234 5678`` becomes ``+8613812345678``) and looked up under every
configured key, so values not yet rotated are found too. Only equality can be searched: the
digests keep no order and no part of the text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import Index, Integer, String, and_, delete, event, false, inspect, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from ..lowcode import fields
from . import encryption
from .keyring import Keyring


class BlindIndex(Model):
    """The digest of one encrypted value of one record."""

    __tablename__ = "crm_blind_index"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    field: Mapped[str] = mapped_column(String(40), nullable=False)
    record_id: Mapped[int] = mapped_column(Integer, nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (
        Index("ix_crm_blind_index_digest", "model", "field", "digest"),
        Index("ix_crm_blind_index_record", "model", "record_id"),
    )


def digest(ring: Keyring, key_id: str, model: str, name: str, value: Any) -> str | None:
    """The digest of ``value`` of field ``name`` of ``model`` under key ``key_id``."""
    key = ring.index_key(key_id)
    if key is None:
        return None
    message = f"{model}\x1f{name}\x1f{json.dumps(value, sort_keys=True)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def digests(ring: Keyring, model: str, name: str, value: Any) -> list[str]:
    """The digests of ``value`` under every configured key (the current one first)."""
    found = (digest(ring, key_id, model, name, value) for key_id in ring.ids)
    return [d for d in found if d is not None]


def indexable(value: Any) -> bool:
    """A value that gets a row: not empty, and readable."""
    return not (
        value is None or value == "" or value == [] or isinstance(value, encryption.Unreadable)
    )


def rows_for(
    ring: Keyring, model: str, record_id: int, values: dict[str, Any], names: Iterable[str]
) -> list[dict[str, Any]]:
    """The index rows of one record's ``values`` for the encrypted fields ``names``."""
    key_id = ring.current_id
    if key_id is None:
        return []
    out = []
    for name in names:
        value = values.get(name)
        if indexable(value):
            out.append(
                {
                    "model": model,
                    "field": name,
                    "record_id": record_id,
                    "digest": digest(ring, key_id, model, name, value),
                }
            )
    return out


# --------------------------------------------------------------------------- search


def match_value(model_cls: type, defn: Any, value: Any) -> ColumnElement[bool]:
    """Records of ``model_cls`` whose field ``defn`` holds ``value`` (already in its stored
    form). While the stored values are being brought to a new form (the field was marked or
    unmarked since the last pass), both the index and the plain JSON value are looked at."""
    pk: Any = inspect(model_cls).primary_key[0]
    model = model_cls.__name__
    criteria: list[ColumnElement[bool]] = []
    if defn.encrypted or defn.encryption_pending:
        found = digests(encryption.current_state().keyring(), model, defn.name, value)
        if found:
            rows = select(BlindIndex.record_id).where(
                BlindIndex.model == model,
                BlindIndex.field == defn.name,
                BlindIndex.digest.in_(found),
            )
            criteria.append(pk.in_(rows))
    if not defn.encrypted or defn.encryption_pending:
        column = getattr(model_cls, fields.custom_column(model_cls) or "custom")
        criteria.append(column[defn.name].as_string() == str(value))
    return or_(*criteria) if criteria else false()


def exact_match(
    model_cls: type, name: str, raw_value: Any, session: Session | None = None
) -> ColumnElement[bool]:
    """SQL criterion: records of ``model_cls`` whose custom field ``name`` equals
    ``raw_value`` once normalised as the field stores it (phones to E.164, e-mails lower-case
    …). Matches nothing for an unknown field or a value the field cannot hold. Works for
    fields that are not encrypted too (a JSON comparison then)."""
    from ..db import session as current_session

    s = session if session is not None else current_session()
    query = select(fields.FieldDefinition).where(
        fields.FieldDefinition.model == model_cls.__name__,
        fields.FieldDefinition.name == name,
    )
    with s.no_autoflush:
        defn = s.scalar(query)
        if defn is None:
            return false()
        try:
            value = fields.clean_value(s, defn, raw_value)
        except ValueError:
            return false()
    if not indexable(value):
        return false()
    return match_value(model_cls, defn, value)


# --------------------------------------------------------------------------- upkeep


def _after_flush(session: Session, _ctx: Any) -> None:
    """Write the index rows of the records this flush created, changed or deleted."""
    state = encryption.current_state()
    changed: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    deleted: dict[str, list[int]] = {}
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        column = fields.custom_column(type(obj))
        if column is None:
            continue
        model = type(obj).__name__
        obj_state = inspect(obj)
        if obj in session.deleted:
            if obj_state.identity:
                deleted.setdefault(model, []).append(obj_state.identity[0])
            continue
        if not state.fields_of(model):
            continue
        if obj not in session.new and not obj_state.attrs[column].history.has_changes():
            continue
        values = obj_state.dict.get(column)
        record_id = obj_state.identity[0] if obj_state.identity else getattr(obj, "id", None)
        if record_id is not None:
            changed.setdefault(model, []).append(
                (record_id, values if isinstance(values, dict) else {})
            )
    if not changed and not deleted:
        return
    conn = session.connection()
    table = BlindIndex.__table__
    for model, ids in deleted.items():
        conn.execute(delete(table).where(table.c.model == model, table.c.record_id.in_(ids)))
    ring = state.keyring()
    for model, records in changed.items():
        names = state.fields_of(model)
        replace_rows(conn, ring, model, names, records)


def replace_rows(
    conn: Any,
    ring: Keyring,
    model: str,
    names: frozenset[str],
    records: list[tuple[int, dict[str, Any]]],
) -> int:
    """Make the index rows of ``records`` (id, plain values) those of their encrypted fields
    ``names``; the rows of an unreadable value are kept. Returns the number of rows written."""
    table = BlindIndex.__table__
    plain_ids, new_rows = [], []
    for record_id, values in records:
        kept = [n for n in names if isinstance(values.get(n), encryption.Unreadable)]
        if kept:
            conn.execute(
                delete(table).where(
                    and_(
                        table.c.model == model,
                        table.c.record_id == record_id,
                        table.c.field.not_in(kept),
                    )
                )
            )
        else:
            plain_ids.append(record_id)
        new_rows.extend(rows_for(ring, model, record_id, values, sorted(names)))
    if plain_ids:
        conn.execute(delete(table).where(table.c.model == model, table.c.record_id.in_(plain_ids)))
    if new_rows:
        conn.execute(table.insert(), new_rows)
    return len(new_rows)


def install() -> None:
    """Keep the index up to date after every flush (idempotent)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
