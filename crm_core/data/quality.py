"""Data quality of customers: a score per customer and the 客户信息准确率 KPI.

Each active customer gets a row in ``crm_data_quality`` (see docs/data-quality.md):

- **completeness** (0-100): the weighted share of the fields that matter (:data:`FIELDS`; the
  weights are settings) that are filled in, counting only the fields that apply (the credit
  code and a contact apply to companies only);
- **validity** (0-100): the share of the filled-in checkable values that pass their check (the
  phone parses as a valid number, the e-mail has valid syntax, a company's unified social
  credit code has a valid check digit); 100 when nothing is there to check;
- **duplicate**: the customer shares a normalised phone or e-mail with another active
  customer, or is part of an open pair of the duplicate review (``crm_duplicate_pair``);
- **score** = round(0.5 × completeness + 0.3 × validity + 0.2 × (0 if duplicate else 100)),
  where completeness and validity are the stored whole numbers; halves round up.

The job ``core.data_quality`` keeps the rows current in batches: it scores customers without a
row, customers (or their contacts) changed since their row was computed, and rows computed with
other weights, and drops the rows of archived customers. The figures of a page run as SQL
aggregates over the rows joined to their customers, through the user's record rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    and_,
    bindparam,
    column,
    delete,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column
from stdnum.cn import uscc as uscc_number

from ..customers.models import Contact, Customer
from ..customers.validation import DEFAULT_REGION
from ..db import session, utcnow
from ..security.rules import unrestricted
from ..settings.store import get_setting

#: Customers scored per batch (one transaction each).
BATCH = 500
#: The setting holding the accuracy (%) from which phase-2 modules are recommended.
READINESS_SETTING = "data_quality.readiness_threshold"
READINESS_DEFAULT = 90
WEIGHT_SETTING = "data_quality.weight.{}"
#: The duplicate review's table, used when it exists; only its open customer pairs count.
PAIR_TABLE = "crm_duplicate_pair"
PAIR_MODEL = "Customer"
PAIR_OPEN = "open"


@dataclass(frozen=True)
class QualityField:
    """One field that counts for completeness: ``bit`` marks it missing in ``missing``."""

    key: str
    bit: int
    label: Any
    weight: int
    companies_only: bool = False


FIELDS: tuple[QualityField, ...] = (
    QualityField("name", 1, _l("Name"), 10),
    QualityField("phone_or_email", 2, _l("Phone or e-mail"), 20),
    QualityField("industry", 4, _l("Industry"), 10),
    QualityField("source", 8, _l("Source"), 5),
    QualityField("region", 16, _l("Province and city"), 10),
    QualityField("address", 32, _l("Address"), 10),
    QualityField("owner", 64, _l("Owner"), 10),
    QualityField("uscc", 128, _l("Unified social credit code"), 15, companies_only=True),
    QualityField("contact", 256, _l("At least one contact"), 10, companies_only=True),
)

#: What each issue code asks the user to fix.
ISSUE_LABELS: dict[str, Any] = {
    **{f"missing_{f.key}": _l("Missing: %(field)s", field=f.label) for f in FIELDS},
    "invalid_phone": _l("Phone number is not valid"),
    "invalid_email": _l("E-mail address is not valid"),
    "invalid_uscc": _l("Unified social credit code is not valid"),
    "duplicate_phone": _l("Same phone as another customer"),
    "duplicate_email": _l("Same e-mail as another customer"),
    "duplicate_pair": _l("Open pair in the duplicate review"),
}
_DUPLICATE_CODES = ("duplicate_phone", "duplicate_email", "duplicate_pair")


class DataQuality(Model):
    """The data-quality score of one active customer, as of ``computed_at``.

    ``phone_key`` and ``email_key`` are hashes of the normalised phone and e-mail: they group
    duplicates without keeping a second copy of personal data.
    """

    __tablename__ = "crm_data_quality"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("crm_customer.id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[int] = mapped_column(Integer, nullable=False)
    completeness: Mapped[int] = mapped_column(Integer, nullable=False)
    validity: Mapped[int] = mapped_column(Integer, nullable=False)
    duplicate: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    in_open_pair: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    missing: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    issues: Mapped[list[str] | None] = mapped_column(JSON)
    phone_key: Mapped[str | None] = mapped_column(String(32), index=True)
    email_key: Mapped[str | None] = mapped_column(String(32), index=True)
    rules_version: Mapped[str] = mapped_column(String(16), nullable=False)
    #: The customer's ``version`` that was scored: any later edit through the CRM moves it.
    customer_version: Mapped[int] = mapped_column(Integer, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    # Worst records first is a scan of this index, whatever the table's size.
    __table_args__ = (Index("ix_crm_data_quality_worst", "score", "customer_id"),)


# ------------------------------------------------------------------------------ the rules


def weights() -> dict[str, int]:
    """The completeness weight of each field from the settings (a negative one counts as 0)."""
    out = {}
    for f in FIELDS:
        try:
            value = int(get_setting(WEIGHT_SETTING.format(f.key)))
        except (TypeError, ValueError):
            value = f.weight
        out[f.key] = max(value, 0)
    return out


def rules_version(current: dict[str, int]) -> str:
    """A short fingerprint of the weights: rows computed with other weights are recomputed."""
    text = json.dumps(current, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _blank(value: Any) -> bool:
    return value is None or not str(value).strip()


def _percent(part: int, whole: int) -> int:
    """100 × part / whole as a whole number, halves rounded up; 100 when ``whole`` is 0."""
    if whole <= 0:
        return 100
    return (200 * part + whole) // (2 * whole)


def score_of(completeness: int, validity: int, duplicate: bool) -> int:
    """round(0.5 × completeness + 0.3 × validity + 0.2 × (0 if duplicate else 100))."""
    unique = 0 if duplicate else 100
    return (5 * completeness + 3 * validity + 2 * unique + 5) // 10


def email_is_valid(value: str) -> bool:
    try:
        validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _key(kind: str, value: str | None) -> str | None:
    if not value:
        return None
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:32]


def read_phone(value: Any) -> tuple[bool, str | None]:
    """Whether a stored phone is a valid number, and its grouping key: the key of its E.164
    form, or of its digits when it does not parse (``None`` for a blank one)."""
    if _blank(value):
        return True, None
    try:
        number = phonenumbers.parse(str(value), DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return False, _key("phone", "".join(ch for ch in str(value) if ch.isdigit()))
    normal = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return bool(phonenumbers.is_valid_number(number)), _key("phone", normal)


def email_key(value: Any) -> str | None:
    """The grouping key of an e-mail address: trimmed and lower-cased."""
    return None if _blank(value) else _key("email", str(value).strip().lower())


@dataclass(frozen=True)
class Assessment:
    """What one customer's own fields say, before duplicates are looked at."""

    completeness: int
    validity: int
    missing: int
    issues: list[str]
    phone_key: str | None
    email_key: str | None


def assess(facts: dict[str, Any], current: dict[str, int]) -> Assessment:
    """Completeness and validity of one customer.

    ``facts`` holds the customer's columns (``kind``, ``name``, ``phone``, ``email``,
    ``industry``, ``source``, ``province``, ``city``, ``address``, ``owner_id``, ``uscc``) and
    ``has_contact``; ``current`` the weights.
    """
    company = facts.get("kind") == "company"
    filled = {
        "name": not _blank(facts.get("name")),
        "phone_or_email": not (_blank(facts.get("phone")) and _blank(facts.get("email"))),
        "industry": not _blank(facts.get("industry")),
        "source": not _blank(facts.get("source")),
        "region": not (_blank(facts.get("province")) or _blank(facts.get("city"))),
        "address": not _blank(facts.get("address")),
        "owner": facts.get("owner_id") is not None,
        "uscc": not _blank(facts.get("uscc")),
        "contact": bool(facts.get("has_contact")),
    }
    total = present = missing = 0
    issues: list[str] = []
    for f in FIELDS:
        if f.companies_only and not company:
            continue
        total += current[f.key]
        if filled[f.key]:
            present += current[f.key]
        else:
            missing |= f.bit  # still counted for the field's fill rate
            if current[f.key]:  # a field weighted 0 is nothing to fix
                issues.append(f"missing_{f.key}")
    phone_valid, phone_key = read_phone(facts.get("phone"))
    checks = passed = 0
    for code, value, check in (
        ("invalid_phone", facts.get("phone"), lambda _value: phone_valid),
        ("invalid_email", facts.get("email"), email_is_valid),
        ("invalid_uscc", facts.get("uscc") if company else None, uscc_number.is_valid),
    ):
        if _blank(value):
            continue
        checks += 1
        if check(str(value)):
            passed += 1
        else:
            issues.append(code)
    return Assessment(
        completeness=_percent(present, total),
        validity=_percent(passed, checks),
        missing=missing,
        issues=issues,
        phone_key=phone_key,
        email_key=email_key(facts.get("email")),
    )


# ------------------------------------------------------------------------------ the job

_FACT_COLUMNS = (
    "kind",
    "name",
    "phone",
    "email",
    "industry",
    "source",
    "province",
    "city",
    "address",
    "owner_id",
    "uscc",
)
_QUALITY = DataQuality.__table__
_PAIRS = table(PAIR_TABLE, column("model"), column("left_id"), column("right_id"), column("status"))


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _has_pairs() -> bool:
    return bool(inspect(session().connection()).has_table(PAIR_TABLE))


def _open_pair_condition(ids_column: Any) -> Any:
    """``ids_column`` names a customer in an open pair of the duplicate review."""

    def side(name: str) -> Any:
        return select(_PAIRS.c[name]).where(
            _PAIRS.c.model == PAIR_MODEL, _PAIRS.c.status == PAIR_OPEN
        )

    return or_(ids_column.in_(side("left_id")), ids_column.in_(side("right_id")))


def _stale_ids(after: int, version: str, limit: int) -> list[tuple[int, bool]]:
    """``(customer id, active)`` of the next customers whose row is missing or out of date."""
    q = DataQuality
    # >=: a contact changed in the second its customer was scored (MariaDB keeps whole
    # seconds) counts as newer; the customer is then scored once more.
    contact_changed = exists().where(
        Contact.customer_id == Customer.id, Contact.updated_at >= q.computed_at
    )
    stmt = (
        select(Customer.id, Customer.active)
        .outerjoin(q, q.customer_id == Customer.id)
        .where(Customer.id > after)
        .where(
            or_(
                and_(q.customer_id.is_(None), Customer.active.is_(True)),
                and_(
                    q.customer_id.is_not(None),
                    or_(
                        # Every edit through the CRM moves the version; other SQL writers
                        # move updated_at (MariaDB keeps whole seconds, hence both).
                        Customer.version != q.customer_version,
                        Customer.updated_at > q.computed_at,
                        q.rules_version != version,
                        contact_changed,
                    ),
                ),
            )
        )
        .order_by(Customer.id)
        .limit(limit)
    )
    return [(int(i), bool(a)) for i, a in session().execute(stmt)]


def _pair_members(ids: Sequence[int]) -> set[int]:
    """Those of ``ids`` that are part of an open pair of the duplicate review."""
    s = session()
    found: set[int] = set()
    for name in ("left_id", "right_id"):
        side = _PAIRS.c[name]
        query = select(side).where(
            _PAIRS.c.model == PAIR_MODEL, _PAIRS.c.status == PAIR_OPEN, side.in_(ids)
        )
        found.update(int(i) for i in s.scalars(query))
    return found


def _stored_keys(ids: Sequence[int]) -> set[str]:
    """The phone and e-mail keys the rows of ``ids`` hold now."""
    if not ids:
        return set()
    query = select(_QUALITY.c.phone_key, _QUALITY.c.email_key).where(
        _QUALITY.c.customer_id.in_(ids)
    )
    return {k for row in session().execute(query) for k in row if k}


def _score_batch(ids: list[int], current: dict[str, int], version: str, pairs: bool) -> set[str]:
    """Write fresh rows for the active customers ``ids``, not yet marked as duplicates;
    returns the phone and e-mail keys (before and after) whose groups need a new look."""
    s = session()
    computed_at = utcnow()  # taken before reading: a change made meanwhile is newer
    columns = [getattr(Customer, name) for name in _FACT_COLUMNS]
    query = select(Customer.id, Customer.version, *columns).where(Customer.id.in_(ids))
    facts = {int(row.id): row._asdict() for row in s.execute(query)}
    contacts = select(Contact.customer_id).where(
        Contact.customer_id.in_(ids), Contact.active.is_(True)
    )
    with_contact = set(s.scalars(contacts.distinct()))
    in_pair = _pair_members(ids) if pairs else set()
    keys = _stored_keys(ids)
    rows = []
    for pk, fact in facts.items():
        result = assess({**fact, "has_contact": pk in with_contact}, current)
        keys.update(k for k in (result.phone_key, result.email_key) if k)
        rows.append(
            {
                "customer_id": pk,
                "score": score_of(result.completeness, result.validity, False),
                "completeness": result.completeness,
                "validity": result.validity,
                "duplicate": False,
                "in_open_pair": pk in in_pair,
                "missing": result.missing,
                "issues": result.issues,
                "phone_key": result.phone_key,
                "email_key": result.email_key,
                "rules_version": version,
                "customer_version": fact["version"],
                "computed_at": computed_at,
            }
        )
    s.execute(delete(_QUALITY).where(_QUALITY.c.customer_id.in_(ids)))
    if rows:
        s.execute(insert(_QUALITY), rows)
    return keys


def _shared(key_column: Any, keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` that more than one active customer has in ``key_column``."""
    found: set[str] = set()
    for chunk in _chunks(keys):
        query = (
            select(key_column)
            .join(Customer, Customer.id == DataQuality.customer_id)
            .where(Customer.active.is_(True), key_column.in_(chunk))
            .group_by(key_column)
            .having(func.count() > 1)
        )
        found.update(session().scalars(query))
    return found


def _refresh_duplicates(keys: Iterable[str], ids: Iterable[int]) -> int:
    """Set the duplicate flag, issues and score of every row holding one of ``keys`` and of
    the rows of ``ids``; returns how many rows changed."""
    s = session()
    q = _QUALITY
    wanted = [q.c[name] for name in ("customer_id", "completeness", "validity", "duplicate")]
    wanted += [q.c[name] for name in ("in_open_pair", "issues", "phone_key", "email_key")]
    targets: dict[int, Any] = {}
    key_list = sorted(set(keys))
    for chunk in _chunks(key_list):
        condition = or_(q.c.phone_key.in_(chunk), q.c.email_key.in_(chunk))
        targets.update((int(r.customer_id), r) for r in s.execute(select(*wanted).where(condition)))
    for chunk in _chunks(sorted(set(ids) - targets.keys())):
        condition = q.c.customer_id.in_(chunk)
        targets.update((int(r.customer_id), r) for r in s.execute(select(*wanted).where(condition)))
    phones = _shared(
        DataQuality.phone_key, sorted({r.phone_key for r in targets.values()} - {None})
    )
    emails = _shared(
        DataQuality.email_key, sorted({r.email_key for r in targets.values()} - {None})
    )
    changes = []
    for pk, row in targets.items():
        codes = [
            code
            for code, hit in (
                ("duplicate_phone", row.phone_key in phones),
                ("duplicate_email", row.email_key in emails),
                ("duplicate_pair", row.in_open_pair),
            )
            if hit
        ]
        issues = [c for c in row.issues or [] if c not in _DUPLICATE_CODES] + codes
        if bool(codes) == bool(row.duplicate) and issues == list(row.issues or []):
            continue
        changes.append(
            {
                "pk": pk,
                "new_duplicate": bool(codes),
                "new_issues": issues,
                "new_score": score_of(row.completeness, row.validity, bool(codes)),
            }
        )
    if changes:
        s.execute(
            update(q)
            .where(q.c.customer_id == bindparam("pk"))
            .values(
                duplicate=bindparam("new_duplicate"),
                issues=bindparam("new_issues"),
                score=bindparam("new_score"),
            ),
            changes,
        )
    return len(changes)


def _sync_pairs() -> set[int]:
    """Align ``in_open_pair`` with the duplicate review; returns the customers that changed."""
    s = session()
    q = _QUALITY
    in_pair = _open_pair_condition(q.c.customer_id)
    joined = list(s.scalars(select(q.c.customer_id).where(q.c.in_open_pair.is_(False), in_pair)))
    left = list(s.scalars(select(q.c.customer_id).where(q.c.in_open_pair.is_(True), ~in_pair)))
    for ids, flag in ((joined, True), (left, False)):
        for chunk in _chunks(ids):
            s.execute(update(q).where(q.c.customer_id.in_(chunk)).values(in_open_pair=flag))
    return {int(i) for i in (*joined, *left)}


def recompute(limit: int | None = None) -> dict[str, int]:
    """Bring the scores up to date, a batch per transaction; at most ``limit`` customers
    (``None``: all that need it). Returns counts: ``scored``, ``removed`` (archived
    customers), ``rechecked`` (rows whose duplicate flag changed) and ``more`` (1 when
    ``limit`` stopped it before the end)."""
    counts = {"scored": 0, "removed": 0, "rechecked": 0, "more": 0}
    s = session()
    # The scores are the whole database's, whoever asks for them.
    with unrestricted():
        current = weights()
        version = rules_version(current)
        pairs = _has_pairs()
        if pairs:
            counts["rechecked"] += _refresh_duplicates((), _sync_pairs())
            s.commit()
        after = 0
        while True:
            room = BATCH if limit is None else min(BATCH, limit - counts["scored"])
            if room <= 0:
                counts["more"] = int(bool(_stale_ids(after, version, 1)))
                break
            batch = _stale_ids(after, version, room)
            if not batch:
                break
            after = batch[-1][0]
            active = [pk for pk, is_active in batch if is_active]
            archived = [pk for pk, is_active in batch if not is_active]
            keys = _stored_keys(archived)
            if archived:
                s.execute(delete(_QUALITY).where(_QUALITY.c.customer_id.in_(archived)))
                counts["removed"] += len(archived)
            if active:
                keys |= _score_batch(active, current, version, pairs)
                counts["scored"] += len(active)
            counts["rechecked"] += _refresh_duplicates(keys, active)
            s.commit()
    return counts


def run_job(_app: Any) -> dict[str, int]:
    """The scheduled job ``core.data_quality``."""
    return recompute()
