"""Merging two customers: everything of the loser moves to the survivor.

:func:`merge_customers` works in the caller's transaction (the caller commits, or rolls back on
an error) and writes through the ORM only, so every moved record has its own audit entry and
``*.updated`` event:

1. the loser is archived with ``merged_into_id`` pointing at the survivor (first, so the
   survivor taking over the loser's phone is not refused as a duplicate of the loser);
2. the core's records of the loser move: every column of a ``crm_core`` model that refers to a
   customer (contacts, follow-ups, consents, customers merged into the loser before);
3. each enabled plugin moves its own records through the ``merge_records`` hook; an exception
   stops the merge with a message naming the plugin;
4. the survivor gets the chosen values (``keep``), empty fields filled from the loser, the
   union of both customers' tags and the later last follow-up;
5. the pair of the two is marked merged, the loser's other open pairs are dropped, and the
   domain event ``customer.merged`` (``{"survivor": id, "loser": id}``) is written.

The user must be allowed to write both customers (record rules); once that is checked, the
moves themselves run unrestricted: every record of the loser moves, seen by the user or not.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_app_context
from flask_appbuilder import Model
from flask_babel import gettext as _
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from ..customers.api import CUSTOMER_WRITE
from ..customers.models import Customer
from ..errors import CrmError, FieldError, PermissionDenied
from ..events.outbox import emit
from ..lowcode.fields import custom_column
from ..lowcode.live import PREFIX, current
from ..security import audit
from ..security.rules import UserRules, current_rules, unrestricted
from . import duplicate_pairs

log = logging.getLogger(__name__)

EVENT = "customer.merged"
MOVE_BATCH = 500
SURVIVOR, LOSER = "survivor", "loser"
#: The customer fields a merge offers a choice for, in form order (custom fields follow):
#: those the API writes, less the code (the survivor keeps its own) and the custom values.
FIELDS = tuple(f for f in CUSTOMER_WRITE if f not in ("code", "custom"))
#: Fields an empty survivor value is not filled from the loser for (who owns the customer
#: changes only when a reviewer says so).
NOT_FILLED = frozenset({"owner_id", "team_id"})


class MergeError(CrmError):
    """A merge that cannot be done (the same customer twice, an archived one, a plugin that
    failed to move its records); nothing was merged."""

    status = 409


@dataclass
class MergeResult:
    """What a merge moved, by kind of record (``{"contact": 2, "activity": 5, ...}``)."""

    survivor_id: int
    loser_id: int
    moved: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, n: int) -> None:
        if n:
            self.moved[name] = self.moved.get(name, 0) + n


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def custom_fields() -> list[str]:
    """``custom__…`` names of the customer's active custom fields, in form order."""
    return [PREFIX + d.name for d in current(Customer)]


def value(customer: Customer, name: str) -> Any:
    """The stored value of field ``name`` (a column or ``custom__…``) of ``customer``."""
    if name.startswith(PREFIX):
        return (customer.custom or {}).get(name[len(PREFIX) :])
    return getattr(customer, name)


def differing(survivor: Customer, loser: Customer) -> list[str]:
    """The fields (columns, then custom fields) whose values differ between the two."""
    names = [*FIELDS, *custom_fields()]
    return [n for n in names if value(survivor, n) != value(loser, n)]


def chosen_values(
    survivor: Customer, loser: Customer, keep: dict[str, str] | None = None
) -> dict[str, Any]:
    """The survivor's values after the merge, of each field that changes: the loser's where
    ``keep`` says ``"loser"``, and where the survivor has none (owner and team excepted)."""
    keep = keep or {}
    allowed = {*FIELDS, *custom_fields()}
    unknown = sorted(k for k in keep if k not in allowed)
    if unknown:
        raise FieldError({"keep": [_("Unknown field: %(field)s", field=", ".join(unknown))]})
    wrong = sorted(k for k, side in keep.items() if side not in (SURVIVOR, LOSER))
    if wrong:
        raise FieldError(
            {f"keep.{k}": [_("Choose %(a)s or %(b)s.", a=SURVIVOR, b=LOSER)] for k in wrong}
        )
    out: dict[str, Any] = {}
    for name in allowed:
        mine, theirs = value(survivor, name), value(loser, name)
        side = keep.get(name)
        take = side == LOSER or (
            side is None and _empty(mine) and not _empty(theirs) and name not in NOT_FILLED
        )
        if take and mine != theirs:
            out[name] = theirs
    return out


# ------------------------------------------------------------------------------ checks


def _label(customer: Customer) -> str:
    return f"{customer.name}（{customer.code}）"


def check_mergeable(survivor: Customer, loser: Customer) -> Any:
    """Refuse a merge that makes no sense or that the user may not do, naming the customer;
    returns the user's record rules (``None``: unrestricted)."""
    if survivor.id == loser.id:
        raise MergeError(_("A customer cannot be merged with itself."))
    for customer in (survivor, loser):
        if not customer.active or customer.merged_into_id is not None:
            raise MergeError(
                _("%(customer)s is archived and cannot be merged.", customer=_label(customer))
            )
    rules = current_rules()
    if rules is None:
        return None
    for customer in (survivor, loser):
        if not isinstance(rules, UserRules) or not rules.may_write(customer, before=True):
            raise PermissionDenied(
                _(
                    "You may not change %(customer)s, so you cannot merge it.",
                    customer=_label(customer),
                )
            )
    return rules


def _check_survivor_after(survivor: Customer, rules: Any) -> None:
    """The survivor as merged (its owner may be the loser's) must still be the user's to write."""
    if isinstance(rules, UserRules) and not rules.may_write(survivor):
        raise PermissionDenied(_("You may not give this record to that owner or team."))


# ------------------------------------------------------------------------------ moving


def _customer_links() -> Iterator[tuple[type, str]]:
    """``(model, attribute)`` of every column of a core model that refers to a customer."""
    table = Customer.__table__
    for mapper in Model.registry.mappers:
        cls = mapper.class_
        if not cls.__module__.startswith("crm_core."):
            continue
        for prop in mapper.column_attrs:
            column = prop.columns[0]
            if any(fk.column.table is table for fk in getattr(column, "foreign_keys", ())):
                yield cls, prop.key


def _move_core(s: Session, survivor: Customer, loser: Customer, result: MergeResult) -> None:
    for cls, key in _customer_links():
        attr = getattr(cls, key)
        pk: Any = inspect(cls).primary_key[0]
        name = str(getattr(cls, "__crm_event__", None) or getattr(cls, "__tablename__", ""))
        while True:  # a batch at a time: a customer may have many follow-ups
            batch: list[Any] = list(
                s.scalars(select(cls).where(attr == loser.id).order_by(pk).limit(MOVE_BATCH))
            )
            if not batch:
                break
            for record in batch:
                setattr(record, key, survivor.id)
            s.flush()
            result.count(name, len(batch))


def _plugin_moves(s: Session, survivor: Customer, loser: Customer) -> list[tuple[Any, str]]:
    """Records of models without their own audit trail that a plugin moved from the loser to
    the survivor in this unit of work, with the attribute that moved."""
    table = Customer.__table__
    out = []
    for obj in s.dirty:
        if getattr(obj, "__crm_event__", None) is not None or isinstance(obj, Customer):
            continue
        state = inspect(obj)
        for prop in state.mapper.column_attrs:
            column = prop.columns[0]
            if not any(fk.column.table is table for fk in getattr(column, "foreign_keys", ())):
                continue
            history = state.attrs[prop.key].history
            if history.deleted == [loser.id] and history.added == [survivor.id]:
                out.append((obj, prop.key))
        for rel in state.mapper.relationships:
            if rel.mapper.class_ is not Customer or rel.direction.name != "MANYTOONE":
                continue
            history = state.attrs[rel.key].history
            if history.deleted and history.deleted[0] is loser and history.added == [survivor]:
                key = state.mapper.get_property_by_column(next(iter(rel.local_columns))).key
                out.append((obj, key))
    return out


def _move_plugins(s: Session, survivor: Customer, loser: Customer, result: MergeResult) -> None:
    """Each enabled plugin's ``merge_records``; any failure aborts the merge, naming it."""
    if not has_app_context():
        return
    registry = current_app.extensions["crm"]
    enabled = registry.enabled_names()
    for impl in reversed(registry.pm.hook.merge_records.get_hookimpls()):
        owner = registry.owner_of_module.get(impl.plugin_name, impl.plugin_name)
        if owner != "core" and owner not in enabled:
            continue
        args = {"model": "customer", "survivor": survivor, "loser": loser}
        try:
            moved = impl.function(*[args[a] for a in impl.argnames])
            for obj, key in _plugin_moves(s, survivor, loser):
                model = getattr(type(obj), "__tablename__", type(obj).__name__)
                audit.write_entry(s, model, obj.id, "update", {key: [loser.id, survivor.id]})
            s.flush()
        except CrmError as exc:
            raise MergeError(
                _(
                    "Module %(plugin)s could not move its records: %(error)s",
                    plugin=owner,
                    error=exc,
                )
            ) from exc
        except Exception as exc:
            log.error("merge_records of %s failed: %s", owner, traceback.format_exc(limit=6))
            raise MergeError(
                _(
                    "Module %(plugin)s could not move its records, so nothing was merged; "
                    "the error has been logged.",
                    plugin=owner,
                )
            ) from exc
        if isinstance(moved, int):
            result.count(owner, moved)


def _unique_custom(moving: dict[str, Any]) -> list[str]:
    """The custom fields among ``moving`` whose values must be unique."""
    unique = {PREFIX + d.name for d in current(Customer) if d.unique}
    return [k for k in moving if k in unique]


def _take_values(s: Session, survivor: Customer, loser: Customer, values: dict[str, Any]) -> None:
    custom = dict(survivor.custom or {})
    for name, new in values.items():
        if name.startswith(PREFIX):
            key = name[len(PREFIX) :]
            if _empty(new):
                custom.pop(key, None)
            else:
                custom[key] = new
        else:
            setattr(survivor, name, new)
    if any(n.startswith(PREFIX) for n in values):
        setattr(survivor, custom_column(Customer) or "custom", custom or None)
    if "owner_id" in values:
        survivor.pooled_at = loser.pooled_at if survivor.owner_id is None else None
    tags = list(survivor.tags)
    for tag in loser.tags:
        if tag not in tags:
            survivor.tags.append(tag)
    if loser.last_activity_at is not None and (
        survivor.last_activity_at is None or survivor.last_activity_at < loser.last_activity_at
    ):
        survivor.last_activity_at = loser.last_activity_at


def _archive_loser(s: Session, survivor: Customer, loser: Customer, values: dict[str, Any]) -> None:
    """Archive the loser, pointing at the survivor; a unique custom value the survivor takes
    over leaves the loser first, or the survivor could not have it."""
    unique = _unique_custom(values)
    if unique:
        custom = dict(loser.custom or {})
        for name in unique:
            custom.pop(name[len(PREFIX) :], None)
        setattr(loser, custom_column(Customer) or "custom", custom or None)
    loser.active = False
    loser.merged_into_id = survivor.id
    s.flush()


def merge_customers(
    survivor: Customer,
    loser: Customer,
    keep: dict[str, str] | None = None,
    *,
    session: Session | None = None,
    user_id: int | None = None,
) -> MergeResult:
    """Merge ``loser`` into ``survivor`` in the current transaction (see the module's doc).

    ``keep`` maps fields (``phone``, ``custom__grade``) to ``"survivor"`` or ``"loser"``: whose
    value the survivor keeps. Fields left out keep the survivor's value, or the loser's where
    the survivor has none. Raises :class:`MergeError`, :class:`~crm_core.errors.FieldError` or
    :class:`~crm_core.errors.PermissionDenied`; the caller then rolls back."""
    s = session or inspect(survivor).session
    if s is None:
        raise MergeError(_("The customers to merge are not loaded."))
    rules = check_mergeable(survivor, loser)
    values = chosen_values(survivor, loser, keep)
    result = MergeResult(survivor.id, loser.id)
    with unrestricted():
        _archive_loser(s, survivor, loser, values)
        _move_core(s, survivor, loser, result)
        _move_plugins(s, survivor, loser, result)
        _take_values(s, survivor, loser, values)
        _check_survivor_after(survivor, rules)
        s.flush()
        pair = duplicate_pairs.pair_of(s, survivor.id, loser.id)
        if pair is not None:
            duplicate_pairs.decide(pair, "merged", user_id)
        duplicate_pairs.drop_open_pairs_of(s, loser.id)
        emit(s, EVENT, {"survivor": survivor.id, "loser": loser.id, "moved": result.moved})
        s.flush()
    return result
