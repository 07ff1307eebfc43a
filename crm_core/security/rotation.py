"""Bringing stored custom values to the current key and to their fields' marks.

:func:`sync` walks the records of every model that takes custom fields (or one model, or one
field) in batches by primary key (``id > last``, each batch committed on its own), so a run that
stops halfway is simply run again, and a second run over data in order writes nothing. Each
value becomes what its field asks for:

- a field marked encrypted: encrypted under the current key (a plain value is encrypted, one
  under an older key re-encrypted);
- a field not marked: decrypted;
- a key no definition names any more: an encrypted value is re-encrypted, a plain one stays.

The blind-index rows of each batch are made to match, and so are the copies of the values in
the audit log and the outbox (re-encrypting changes how a value is stored, not what it says;
like erasure, this goes through Core statements, the ORM keeping audit entries read-only). A
value whose key is not configured any more is counted as unreadable and left as it is.

A record written by a user between the read and the write of its batch is left alone (its
``version`` moved) and counted as skipped: that write already stored the right form, and a
rerun checks it. ``crm keys rotate`` runs the whole pass; the job ``core.encryption_sync`` runs
it for each field an admin marked or unmarked since (see :func:`sync_marked`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import (
    JSON,
    Text,
    bindparam,
    cast,
    delete,
    inspect,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ..db import session as current_session
from ..errors import CrmError
from ..lowcode.fields import FieldDefinition, custom_column
from . import encryption
from .blind_index import BlindIndex, indexable, rows_for
from .keyring import Keyring

BATCH_SIZE = 1000


@dataclass
class Counts:
    """What a pass did."""

    records: int = 0  # records looked at
    written: int = 0  # records whose stored values changed
    encrypted: int = 0  # plain values encrypted
    reencrypted: int = 0  # values moved to the current key
    decrypted: int = 0  # values of fields no longer marked
    unreadable: int = 0  # values whose key is not configured (left as they are)
    skipped: int = 0  # records changed by someone else during the pass (run again to check)
    index_rows: int = 0  # blind-index rows written or removed
    copies: int = 0  # audit entries and outbox events rewritten

    def add(self, other: Counts) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


Progress = Callable[[str, Counts], None]


class RotationError(CrmError):
    """The pass cannot run (no encryption key is configured)."""

    status = 503


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def convert(
    ring: Keyring,
    model: str,
    values: dict[str, Any],
    policy: dict[str, bool],
    scope: set[str] | None,
    counts: Counts,
) -> dict[str, Any] | None:
    """``values`` (as stored) in the form ``policy`` asks for (field -> encrypted or not; a
    field missing from it keeps its form), or ``None`` when nothing changes."""
    out, changed = dict(values), False
    for name, value in values.items():
        if scope is not None and name not in scope:
            continue
        want = policy.get(name)
        if not encryption.is_stored_form(value):
            if want and not _empty(value):
                out[name] = encryption.encrypt_value(ring, model, name, value)
                counts.encrypted += 1
                changed = True
            continue
        if want is not False and encryption.key_id_of(value) == ring.current_id:
            continue
        plain = encryption.decrypt_value(ring, model, name, value)
        if isinstance(plain, encryption.Unreadable):
            counts.unreadable += 1
            continue
        if want is False:
            out[name] = plain
            counts.decrypted += 1
        else:
            out[name] = encryption.encrypt_value(ring, model, name, plain)
            counts.reencrypted += 1
        changed = True
    return out if changed else None


def _plain(ring: Keyring, model: str, values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: encryption.decrypt_value(ring, model, name, value)
        if encryption.is_stored_form(value)
        else value
        for name, value in values.items()
    }


def _json_type(s: Session) -> Any:
    return JSONB() if s.get_bind().dialect.name == "postgresql" else JSON()


def _records(
    s: Session,
    model_cls: type,
    policy: dict[str, bool],
    scope: set[str] | None,
    batch_size: int,
    progress: Progress | None,
) -> Counts:
    """The records of ``model_cls`` and their index rows, batch by batch."""
    ring = encryption.current_state().keyring()
    model = model_cls.__name__
    table: Any = model_cls.__table__  # type: ignore[attr-defined]
    pk = table.c[inspect(model_cls).primary_key[0].name]
    column = table.c[custom_column(model_cls) or "custom"]
    version = table.c.get("version")
    json_type = _json_type(s)
    marked = {n for n, want in policy.items() if want and (scope is None or n in scope)}
    write = update(table).where(pk == bindparam("_pk"))
    if version is not None:
        write = write.where(version == bindparam("_version"))  # a user's change wins
    write = write.values({column: bindparam("_values", type_=json_type)})
    counts, last = Counts(), None
    while True:
        query = select(pk, _raw(column, json_type), *([] if version is None else [version]))
        query = query.order_by(pk)
        if last is not None:
            query = query.where(pk > last)
        rows = s.connection().execute(query.limit(batch_size)).all()
        if not rows:
            break
        last = rows[-1][0]
        writes: list[dict[str, Any]] = []
        in_plain: dict[int, dict[str, Any]] = {}
        for row in rows:
            counts.records += 1
            values = row[1] if isinstance(row[1], dict) else {}
            new = convert(ring, model, values, policy, scope, counts)
            if new is not None:
                writes.append({"_pk": row[0], "_values": new, "_version": row[-1]})
                values = new
            in_plain[row[0]] = _plain(ring, model, values)
        if writes:
            s.connection().execute(write, writes)
            moved = _moved(s, pk, version, writes)
            counts.skipped += len(moved)
            counts.written += len(writes) - len(moved)
            for record_id in moved:
                del in_plain[record_id]  # its writer kept the index too
        counts.index_rows += _index(s, ring, model, list(in_plain.items()), marked, scope)
        s.commit()
        if progress is not None:
            progress(model, counts)
    return counts


def _moved(s: Session, pk: Any, version: Any, writes: list[dict[str, Any]]) -> set[int]:
    """The records of ``writes`` that someone else changed (or deleted) since they were read:
    their ``version`` moved, so the write did not apply."""
    if version is None:
        return set()
    expected = {w["_pk"]: w["_version"] for w in writes}
    rows = s.connection().execute(select(pk, version).where(pk.in_(list(expected))))
    now: dict[int, Any] = {record_id: v for record_id, v in rows}
    return {record_id for record_id, v in expected.items() if now.get(record_id) != v}


def _raw(column: Any, json_type: Any) -> Any:
    """The column as stored: plain JSON, without the read hook that decrypts."""
    return type_coerce(column, json_type)


def _index(
    s: Session,
    ring: Keyring,
    model: str,
    records: list[tuple[int, dict[str, Any]]],
    marked: set[str],
    scope: set[str] | None,
) -> int:
    """Make the index rows of ``records`` (in plain) match their values of the ``marked``
    fields; returns how many rows were added or removed."""
    if not records:
        return 0
    table: Any = BlindIndex.__table__
    ids = [record_id for record_id, _values in records]
    query = select(table.c.id, table.c.record_id, table.c.field, table.c.digest).where(
        table.c.model == model, table.c.record_id.in_(ids)
    )
    if scope is not None:
        query = query.where(table.c.field.in_(sorted(scope)))
    existing = {(r.record_id, r.field, r.digest): r.id for r in s.connection().execute(query)}
    wanted: set[tuple[int, str, str]] = set()
    keep: set[tuple[int, str]] = set()
    for record_id, values in records:
        for row in rows_for(ring, model, record_id, values, sorted(marked)):
            wanted.add((record_id, row["field"], row["digest"]))
        for name in marked:
            if not indexable(values.get(name)) and not _empty(values.get(name)):
                keep.add((record_id, name))  # unreadable: its rows stay as they are
    stale = [
        row_id
        for (record_id, name, digest), row_id in existing.items()
        if (record_id, name, digest) not in wanted and (record_id, name) not in keep
    ]
    missing = [
        {"model": model, "field": name, "record_id": record_id, "digest": digest}
        for record_id, name, digest in sorted(wanted)
        if (record_id, name, digest) not in existing
    ]
    if stale:
        s.connection().execute(delete(table).where(table.c.id.in_(stale)))
    if missing:
        s.connection().execute(table.insert(), missing)
    return len(stale) + len(missing)


def _copies(
    s: Session,
    model_cls: type,
    policy: dict[str, bool],
    scope: set[str] | None,
    batch_size: int,
) -> int:
    """The audit entries and outbox events of ``model_cls``'s records that copy its custom
    values, rewritten in the form ``policy`` asks for; returns how many were rewritten."""
    from ..events.models import OutboxEvent
    from .audit import AuditLog

    prefix = getattr(model_cls, "__crm_event__", None)
    column = custom_column(model_cls)
    if prefix is None or column is None:
        return 0
    audit: Any = AuditLog.__table__
    outbox: Any = OutboxEvent.__table__
    common: dict[str, Any] = {
        "model_cls": model_cls,
        "policy": policy,
        "scope": scope,
        "batch_size": batch_size,
    }
    entries = _rewrite(s, audit, audit.c.changes, audit.c.model == prefix, None, **common)
    where = outbox.c.type.like(f"{prefix}.%")
    events = _rewrite(s, outbox, outbox.c.payload, where, "changes", **common)
    return entries + events


def _rewrite(
    s: Session,
    table: Any,
    document: Any,
    where: Any,
    inner: str | None,
    model_cls: type,
    policy: dict[str, bool],
    scope: set[str] | None,
    batch_size: int,
) -> int:
    ring = encryption.current_state().keyring()
    model, column = model_cls.__name__, custom_column(model_cls) or "custom"
    scratch, rewritten, last = Counts(), 0, 0
    while True:
        query = (
            select(table.c.id, document)
            .where(where, table.c.id > last, cast(document, Text).like(f'%"{column}"%'))
            .order_by(table.c.id)
            .limit(batch_size)
        )
        rows = s.connection().execute(query).all()
        if not rows:
            return rewritten
        last = rows[-1][0]
        for row_id, doc in rows:
            changes = doc.get(inner) if inner and isinstance(doc, dict) else doc
            pair = changes.get(column) if isinstance(changes, dict) else None
            if not isinstance(changes, dict) or not isinstance(pair, list):
                continue
            converted = [
                convert(ring, model, v, policy, scope, scratch) if isinstance(v, dict) else None
                for v in pair
            ]
            if all(c is None for c in converted):
                continue
            new_pair = [v if c is None else c for v, c in zip(pair, converted, strict=True)]
            new_changes = {**changes, column: new_pair}
            new_doc = {**doc, inner: new_changes} if inner else new_changes
            s.connection().execute(
                update(table)
                .where(table.c.id == row_id)
                .values({document: literal(new_doc, JSON())})
            )
            rewritten += 1
        s.commit()


def custom_models(s: Session) -> list[type]:
    """Every model that takes custom fields and whose table exists in this database."""
    tables = set(inspect(s.connection()).get_table_names())
    found = [
        m.class_
        for m in Model.registry.mappers
        if m.inherits is None and custom_column(m.class_) and m.class_.__table__.name in tables  # type: ignore[attr-defined]
    ]
    return sorted(found, key=lambda cls: cls.__name__)


def _mark_done(s: Session, model: str, stamps: dict[str, Any], scope: set[str] | None) -> None:
    """Record that the values of the fields are in the form their marks ask for, unless an
    admin saved the definition since the pass began (``stamps``: its ``updated_at`` then; the
    next pass takes the change)."""
    table: Any = FieldDefinition.__table__
    for name, stamp in stamps.items():
        if scope is not None and name not in scope:
            continue
        s.connection().execute(
            update(table)
            .where(table.c.model == model, table.c.name == name, table.c.updated_at == stamp)
            .values(encryption_pending=False, updated_at=table.c.updated_at)  # not a user's change
        )


def sync(
    model: str | None = None,
    field: str | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> Counts:
    """Bring the stored values of every model (or ``model``, or its ``field``) to the current
    key and to their fields' marks; raises :class:`RotationError` without a key."""
    from flask_babel import gettext as _

    s = current_session()
    state = encryption.current_state()
    if not state.keyring():
        raise RotationError(_("No encryption key is configured (CRM_ENCRYPTION_KEYS)."))
    total = Counts()
    for model_cls in custom_models(s):
        name = model_cls.__name__
        if model is not None and name != model:
            continue
        table: Any = FieldDefinition.__table__
        defs = s.connection().execute(
            select(table.c.name, table.c.encrypted, table.c.updated_at).where(table.c.model == name)
        )
        policy, stamps = {}, {}
        for field_name, encrypted, updated_at in defs:
            policy[field_name], stamps[field_name] = bool(encrypted), updated_at
        s.commit()  # nothing held open while the batches run
        scope = {field} if field is not None else None
        counts = _records(s, model_cls, policy, scope, batch_size, progress)
        counts.copies += _copies(s, model_cls, policy, scope, batch_size)
        _mark_done(s, name, stamps, scope)
        s.commit()
        state.encrypted[name] = frozenset(n for n, want in policy.items() if want)
        total.add(counts)
    return total


def sync_marked(_app: Any = None) -> dict[str, int]:
    """The job ``core.encryption_sync``: one pass per field whose mark changed since its
    values were last brought to their form."""
    import logging

    s = current_session()
    table: Any = FieldDefinition.__table__
    pending = (
        s.connection()
        .execute(
            select(table.c.model, table.c.name)
            .where(table.c.encryption_pending.is_(True))
            .order_by(table.c.id)
        )
        .all()
    )
    s.commit()
    if not pending:
        return {"fields": 0}
    if not encryption.current_state().keyring():
        logging.getLogger(__name__).error(
            "fields %s changed their encryption, but no key is configured (CRM_ENCRYPTION_KEYS)",
            ", ".join(f"{m}.{n}" for m, n in pending),
        )
        return {"fields": 0, "waiting": len(pending)}
    total = Counts()
    for model, name in pending:
        total.add(sync(model=model, field=name))
    return {"fields": len(pending), **total.as_dict()}
