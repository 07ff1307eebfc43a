"""Running rules: on events from the outbox, again when a run failed, and as a dry run.

Each run is one transaction of its own in the CRM session: the run-log row (unique per rule,
record and trigger key) and every action's writes commit together, so a redelivered event or
a restarted scheduler finds the row and does nothing twice, and a crash before commit leaves
nothing behind to be done again. A failed run rolls back, is logged with its error and is
tried again with back-off (:func:`retry_due`); an error that cannot pass by itself (a value
a field refuses, a locked record) fails the run at once.

The events a run's writes emit carry the chain of rules that led to them (``_cause``); a rule
met again in its own chain, or a chain longer than :data:`MAX_DEPTH`, stops with a logged
``loop`` run instead of running.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from ...db import model_class, utcnow
from ...db import session as current_session
from ...errors import CrmError
from ...events.models import OutboxEvent
from ...events.outbox import CAUSE_KEY, NEW_EVENTS_KEY
from ...lowcode.conditions import value_of
from ...lowcode.fields import custom_column
from ...lowcode.live import PREFIX
from ...security.audit import audit_channel
from ...security.encrypted_copies import reveal_payload
from ...security.rules import unrestricted
from ...specs import Event
from . import rulecache
from .actions import Context, actions, no_such_action
from .models import AutomationRule, AutomationRun
from .rulecache import RuleDef

log = logging.getLogger(__name__)

#: Rules that trigger each other may chain this deep; deeper is taken for a loop.
MAX_DEPTH = 5
#: Tries of a failing run before it is given up (failed).
MAX_ATTEMPTS = 6
#: A retry that has not ended this long after it was picked up died with its process.
RETRY_LEASE = timedelta(minutes=15)
ERROR_LENGTH = 2000


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 … minutes after the ``attempts``-th failure, at most six hours."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 6 * 3600))


class ActionUnavailable(RuntimeError):
    """A rule names an action no enabled module offers now (its plugin was disabled)."""


@dataclass(frozen=True)
class Outcome:
    """How one run ended: ``done``, ``retry``, ``failed``, ``loop`` or ``skipped`` (another
    process had already run it)."""

    status: str
    results: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class Trigger:
    """What one run is for: a rule, a record, the trigger key, the event (``None`` for timed
    rules) and the chain of rules whose runs led to it."""

    rule: RuleDef
    record: Any
    key: str
    event: Event | None = None
    chain: tuple[int, ...] = ()

    def run(self, **values: Any) -> AutomationRun:
        """A new run-log row for this trigger with ``values`` (status, attempts, …)."""
        return AutomationRun(
            rule_id=self.rule.id,
            rule_version=self.rule.version,
            trigger_key=self.key,
            model=self.rule.model,
            record_id=self.record.id,
            event_id=self.event.id if self.event else None,
            started_at=utcnow(),
            cause=list(self.chain) or None,
            **values,
        )


# --------------------------------------------------------------------------- events


def on_event(event: Event) -> int:
    """Run the rules ``event`` triggers (the core's ``on_event``); returns how many ran."""
    session = current_session()
    rules = rulecache.for_event(session, event.type)
    if not rules:
        return 0
    chain = [int(r) for r in (event.payload.get("_cause") or {}).get("chain", [])]
    records: dict[str, Any] = {}
    ran = 0
    for rule in rules:
        if rule.model not in records:
            records[rule.model] = record_of(session, rule.model, event)
        record = records[rule.model]
        if record is None or not _triggered(rule, event, record):
            continue
        key = f"event:{event.id}"
        if rule.id in chain or len(chain) >= MAX_DEPTH:
            _log_loop(session, Trigger(rule, record, key, event, tuple(chain)))
            continue
        with unrestricted():
            holds = rule.holds(record)
        if holds:
            if execute(rule, record, key, event=event, chain=chain).status != "skipped":
                ran += 1
            records.pop(rule.model, None)  # the run may have changed it: read it again
    return ran


def record_of(session: Session, model: str, event: Event) -> Any:
    """The record of type ``model`` the event is about: the event's own record (``id``) when
    the type emits the event, else the one it names (``customer_id``, or ``model`` and
    ``record_id``)."""
    cls = model_class(model)
    if cls is None:
        return None
    prefix = event.type.rpartition(".")[0]
    payload = event.payload
    own = getattr(cls, "__crm_event__", None)
    if own == prefix:
        pk = payload.get("id")
    elif payload.get("model") == model:
        pk = payload.get("record_id")
    else:
        pk = payload.get(f"{own}_id") if own else None
    if not isinstance(pk, int):
        return None
    with unrestricted():
        return session.get(cls, pk, populate_existing=True)


def _triggered(rule: RuleDef, event: Event, record: Any) -> bool:
    """Whether a field-change rule's field changed in ``event`` (other rules: always)."""
    if rule.trigger != "field_change":
        return True
    field = rule.field or ""
    if event.type.endswith(".created"):
        return value_of(record, field) not in (None, "", [])
    changes = event.payload.get("changes") or {}
    if not field.startswith(PREFIX):
        return field in changes
    pair = changes.get(custom_column(type(record)) or "")
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        return False
    name = field[len(PREFIX) :]
    before, after = ((side if isinstance(side, dict) else {}) for side in pair)
    return before.get(name) != after.get(name)


def _log_loop(session: Session, trigger: Trigger) -> None:
    names = ", ".join(str(r) for r in trigger.chain)
    error = str(_l("Stopped: this run would repeat a chain of rules (%(chain)s).", chain=names))
    log.error(
        "automation rule %s stopped in a loop on %s (chain %s)",
        trigger.rule.name,
        trigger.key,
        names,
    )
    _write_failure(session, trigger, None, "loop", error, 1)


# --------------------------------------------------------------------------- running


def execute(
    rule: RuleDef,
    record: Any,
    trigger_key: str,
    *,
    event: Event | None = None,
    chain: list[int] | None = None,
    run_id: int | None = None,
    attempts: int = 1,
) -> Outcome:
    """Run ``rule``'s actions on ``record`` once for ``trigger_key`` and log the run; with
    ``run_id``, retry that logged run. Commits; dispatches the events its writes emitted."""
    session = current_session()
    trigger = Trigger(rule, record, trigger_key, event, tuple(chain or ()))
    started = time.perf_counter()
    ctx = Context(session, rule, record, event, utcnow())
    outcome: Outcome
    session.info[CAUSE_KEY] = {"chain": [*trigger.chain, rule.id]}
    try:
        with unrestricted(), audit_channel("automation"):
            run = _claim(session, trigger) if run_id is None else session.get(AutomationRun, run_id)
            if run is None:
                return Outcome("skipped")
            results = _run_actions(ctx, rule)
            run.status = "done"
            run.results = results
            run.error = None
            run.next_attempt_at = None
            run.attempts = attempts
            run.rule_version = rule.version
            run.duration_ms = _ms(started)
            session.commit()
            outcome = Outcome("done", tuple(results))
    except Exception as exc:  # noqa: BLE001 - a failed run is logged and retried
        session.rollback()
        outcome = _failed(session, trigger, run_id, attempts, exc)
    finally:
        session.info.pop(CAUSE_KEY, None)
    _dispatch_chained(session)
    return outcome


def _claim(session: Session, trigger: Trigger) -> AutomationRun | None:
    run = trigger.run(status="running", attempts=1)
    session.add(run)
    try:
        session.flush()  # the run's first write: nothing else is lost by a rollback here
    except IntegrityError:  # this trigger already ran (another process, a redelivery)
        session.rollback()
        return None
    return run


def _run_actions(ctx: Context, rule: RuleDef) -> list[str]:
    offered = actions()
    results = []
    for number, step in enumerate(rule.actions, start=1):
        spec = offered.get(str(step.get("type")))
        if spec is None:
            raise ActionUnavailable(no_such_action(number, step.get("type")))
        results.append(str(spec.run(ctx, dict(step.get("params") or {}))))
    ctx.session.flush()  # one flush: one audit entry per record the run changed
    return results


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def error_text(exc: BaseException) -> str:
    """What went wrong, for the run log: the message users see for the CRM's own errors, a
    short line for others, never SQL or a stack trace."""
    if isinstance(exc, CrmError):
        text = str(exc)
    elif isinstance(exc, DBAPIError):
        first = str(exc.orig).strip().splitlines()
        text = str(_l("Database error: %(error)s", error=first[0] if first else type(exc).__name__))
    else:
        text = (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
    return text[:ERROR_LENGTH]


def _failed(
    session: Session, trigger: Trigger, run_id: int | None, attempts: int, exc: Exception
) -> Outcome:
    error = error_text(exc)
    permanent = isinstance(exc, CrmError)
    status = "failed" if permanent or attempts >= MAX_ATTEMPTS else "retry"
    log.warning(
        "automation rule %s on %s failed (%s): %s",
        trigger.rule.name,
        trigger.key,
        status,
        error,
        exc_info=not permanent,
    )
    _write_failure(session, trigger, run_id, status, error, attempts)
    return Outcome(status, (), error)


def _write_failure(
    session: Session,
    trigger: Trigger,
    run_id: int | None,
    status: str,
    error: str,
    attempts: int,
) -> None:
    values = {
        "status": status,
        "error": error,
        "attempts": attempts,
        "next_attempt_at": utcnow() + backoff(attempts) if status == "retry" else None,
        "rule_version": trigger.rule.version,
        "results": None,
    }
    try:
        if run_id is not None:
            session.execute(
                update(AutomationRun).where(AutomationRun.id == run_id).values(**values)
            )
        else:
            session.add(trigger.run(**{k: v for k, v in values.items() if k != "rule_version"}))
        session.commit()
    except IntegrityError:  # another process logged this trigger meanwhile
        session.rollback()


def _dispatch_chained(session: Session) -> None:
    """Deliver the events this run's writes emitted now (rules they trigger run in turn)."""
    from sqlalchemy import inspect

    from ...events.dispatch import dispatch_pending

    rows = session.info.pop(NEW_EVENTS_KEY, None)
    ids = [key[0] for key in (inspect(r).identity for r in rows or []) if key]
    if ids:
        try:
            dispatch_pending(event_ids=ids)
        except Exception:  # noqa: BLE001 - committed events wait for the dispatch job
            log.exception("dispatching the events of an automation run failed")


# --------------------------------------------------------------------------- retries


def retry_due(now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Run again the failed runs whose back-off has passed (the ``core.automation`` job)."""
    session = current_session()
    now = now or utcnow()
    due = session.scalars(
        select(AutomationRun.id)
        .where(
            AutomationRun.status.in_(("retry", "running")),
            AutomationRun.next_attempt_at <= now,
        )
        .order_by(AutomationRun.next_attempt_at)
        .limit(limit)
    ).all()
    session.commit()
    counts = {"retried": 0, "done": 0}
    for run_id in due:
        claimed = session.execute(
            update(AutomationRun)
            .where(
                AutomationRun.id == run_id,
                AutomationRun.status.in_(("retry", "running")),
                AutomationRun.next_attempt_at <= now,
            )
            .values(status="running", next_attempt_at=now + RETRY_LEASE)
        )
        session.commit()
        if not claimed.rowcount:  # type: ignore[attr-defined]
            continue
        counts["retried"] += 1
        if _retry(session, run_id).status == "done":
            counts["done"] += 1
    return counts


def _retry(session: Session, run_id: int) -> Outcome:
    run = session.get(AutomationRun, run_id, populate_existing=True)
    assert run is not None
    rule_row = session.get(AutomationRule, run.rule_id)
    cls = model_class(run.model)
    with unrestricted():
        record = session.get(cls, run.record_id) if cls is not None else None
    event = _event(session, run.event_id)
    attempts = run.attempts + 1
    if rule_row is None or not rule_row.active or record is None:
        why = (
            _l("The record no longer exists.")
            if record is None
            else _l("The rule was switched off.")
        )
        run.status, run.error, run.next_attempt_at = "failed", str(why), None
        session.commit()
        return Outcome("failed", (), str(why))
    rule = RuleDef.of(rule_row)
    return execute(
        rule,
        record,
        run.trigger_key,
        event=event,
        chain=list(run.cause or []),
        run_id=run.id,
        attempts=attempts,
    )


def _event(session: Session, event_id: int | None) -> Event | None:
    if event_id is None:
        return None
    row = session.get(OutboxEvent, event_id)
    if row is None:
        return None
    payload = reveal_payload(row.type, row.payload)
    return Event(id=row.id, type=row.type, payload=payload, occurred_at=row.occurred_at)
