"""Login protection: an account locks after too many wrong passwords in a row, and an IP address
is refused for a while after too many failed logins, whatever names it tried.

The counts live in the database (:mod:`crm_core.security.login_models`) and change through
single UPDATE statements, so several web processes count together. The HTML login form and the
JWT login API both authenticate through :meth:`CrmSecurityManager.auth_user_db`, which asks a
:class:`LoginGuard` before checking the password and tells it the outcome afterwards.

Names nobody has are counted and locked exactly like accounts, so a locked answer says nothing
about whether a user name exists. Locking and unlocking a real account are written to the audit
trail.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import g, has_request_context, request
from flask_babel import gettext
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..db import session, utcnow
from ..settings.store import get_setting
from .audit import write_entry
from .login_models import ACCOUNT_LENGTH, LoginFailure, LoginLock

LOCK_AFTER = "security.lock_after_failures"
LOCK_MINUTES = "security.lock_minutes"
IP_LIMIT = "security.ip_failure_limit"
IP_WINDOW = "security.ip_window_minutes"
#: Wrong passwords of a name that has had no failure for this long are forgotten.
FORGET_AFTER = timedelta(days=1)
#: The audit trail names locked and unlocked accounts as this record type.
AUDIT_MODEL = "user"
_REFUSAL_KEY = "crm_login_refusal"


@dataclass(frozen=True)
class Refusal:
    """Why a login was refused before the password counted, and for how many more minutes."""

    reason: str  # "locked" (the account) or "ip" (the client's address)
    minutes: int

    @property
    def status(self) -> int:
        """The API's answer: 401 for a locked account, 429 for an address sending too many."""
        return 429 if self.reason == "ip" else 401

    @property
    def message(self) -> str:
        if self.reason == "ip":
            return gettext(
                "Too many failed logins from your network. Try again in %(minutes)s minutes.",
                minutes=self.minutes,
            )
        return gettext(
            "Too many failed logins: this account is locked for %(minutes)s more minutes. "
            "Try again later or ask an administrator to unlock it.",
            minutes=self.minutes,
        )


def current_refusal() -> Refusal | None:
    """The refusal of this request's login attempt, if it was refused."""
    if not has_request_context():
        return None
    refusal: Refusal | None = g.get(_REFUSAL_KEY)
    return refusal


def _minutes_left(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds() / 60))


def _int_setting(key: str) -> int:
    try:
        return int(get_setting(key))
    except (TypeError, ValueError):
        return 0


def client_ip() -> str:
    """The address a login comes from (behind a proxy, configure ``ProxyFix``)."""
    if has_request_context() and request.remote_addr:
        return request.remote_addr[:45]
    return "local"


class LoginGuard:
    """One login attempt for the name ``typed``: refuse it early, or count its outcome.

    ``security_manager`` finds the user; an unknown name is counted under its lower-case form.
    The caller rolls back on a database error.
    """

    def __init__(self, security_manager: Any, typed: str) -> None:
        self.now = utcnow()
        self.ip = client_ip()
        user = security_manager.find_user(username=typed)
        if user is None:
            user = security_manager.find_user(email=typed)
        if user is not None:
            self.account: str = str(user.username)[:ACCOUNT_LENGTH]
            self.user_id: int | None = int(user.id)
        else:
            self.account = typed.strip().lower()[:ACCOUNT_LENGTH]
            self.user_id = None

    def _refuse(self, refusal: Refusal) -> Refusal:
        if has_request_context():
            setattr(g, _REFUSAL_KEY, refusal)
        return refusal

    def refusal(self) -> Refusal | None:
        """A refusal when the address or the account is blocked now; nothing is written."""
        blocked = ip_blocked_until(self.ip, self.now)
        if blocked is not None:
            return self._refuse(Refusal("ip", _minutes_left(blocked, self.now)))
        until = session().scalar(
            select(LoginLock.locked_until).where(LoginLock.account == self.account)
        )
        if until is not None and until > self.now:
            return self._refuse(Refusal("locked", _minutes_left(until, self.now)))
        return None

    def succeeded(self) -> None:
        """The right password: the account's count starts again. Commits."""
        session().execute(
            delete(LoginLock).where(
                LoginLock.account == self.account,
                or_(LoginLock.locked_until.is_(None), LoginLock.locked_until <= self.now),
            )
        )
        session().commit()

    def failed(self) -> Refusal | None:
        """A wrong password: count it for the address and the account, and lock the account
        when this was one too many (the refusal then says so). Commits."""
        s = session()
        s.add(LoginFailure(ip=self.ip, account=self.account, occurred_at=self.now))
        s.flush()
        refusal = None
        if not self._count():
            until = s.scalar(
                select(LoginLock.locked_until).where(LoginLock.account == self.account)
            )
            if until is not None and until > self.now:  # locked meanwhile by another process
                refusal = self._refuse(Refusal("locked", _minutes_left(until, self.now)))
        else:
            refusal = self._lock_if_due()
        s.commit()
        return refusal

    def _count(self) -> bool:
        """Add one to the account's count; False when it is locked (by a concurrent failure)."""
        s = session()
        # An expired lock, or failures long ago, no longer count.
        s.execute(
            update(LoginLock)
            .where(
                LoginLock.account == self.account,
                or_(
                    LoginLock.locked_until <= self.now,
                    (LoginLock.locked_until.is_(None))
                    & (LoginLock.last_failure_at < self.now - FORGET_AFTER),
                ),
            )
            .values(failures=0, locked_at=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )
        for _attempt in range(2):
            counted = s.execute(
                update(LoginLock)
                .where(LoginLock.account == self.account, LoginLock.locked_until.is_(None))
                .values(
                    failures=LoginLock.failures + 1,
                    last_failure_at=self.now,
                    last_failure_ip=self.ip,
                    user_id=self.user_id,
                )
                .execution_options(synchronize_session=False)
            )
            if counted.rowcount:  # type: ignore[attr-defined]
                return True
            if s.scalar(select(LoginLock.id).where(LoginLock.account == self.account)):
                return False
            try:
                with s.begin_nested():
                    s.add(
                        LoginLock(
                            account=self.account,
                            user_id=self.user_id,
                            failures=1,
                            last_failure_at=self.now,
                            last_failure_ip=self.ip,
                        )
                    )
                return True
            except IntegrityError:  # another process added the row first: count on it
                continue
        return False

    def _lock_if_due(self) -> Refusal | None:
        limit = _int_setting(LOCK_AFTER)
        if limit <= 0:
            return None
        until = self.now + timedelta(minutes=max(1, _int_setting(LOCK_MINUTES)))
        s = session()
        locked = s.execute(
            update(LoginLock)
            .where(
                LoginLock.account == self.account,
                LoginLock.locked_until.is_(None),
                LoginLock.failures >= limit,
            )
            .values(locked_at=self.now, locked_until=until)
            .execution_options(synchronize_session=False)
        )
        if not locked.rowcount:  # type: ignore[attr-defined]
            return None
        if self.user_id is not None:
            failures = s.scalar(select(LoginLock.failures).where(LoginLock.account == self.account))
            write_entry(
                s,
                AUDIT_MODEL,
                self.user_id,
                "lock",
                {"failures": [None, failures], "locked_until": [None, until]},
            )
        return self._refuse(Refusal("locked", _minutes_left(until, self.now)))


def ip_blocked_until(ip: str, now: datetime) -> datetime | None:
    """When ``ip`` may try again, or ``None`` when it is not blocked: it is blocked while it
    has the limit of failed logins or more within the window."""
    limit = _int_setting(IP_LIMIT)
    if limit <= 0:
        return None
    window = timedelta(minutes=max(1, _int_setting(IP_WINDOW)))
    recent = (LoginFailure.ip == ip, LoginFailure.occurred_at > now - window)
    s = session()
    count = s.scalar(select(func.count()).select_from(LoginFailure).where(*recent)) or 0
    if count < limit:
        return None
    # Once this failure leaves the window, one fewer than the limit remain.
    oldest_needed = s.scalar(
        select(LoginFailure.occurred_at)
        .where(*recent)
        .order_by(LoginFailure.occurred_at, LoginFailure.id)
        .offset(count - limit)
        .limit(1)
    )
    return (oldest_needed or now) + window


def is_locked(lock: LoginLock, now: datetime | None = None) -> bool:
    return lock.locked_until is not None and lock.locked_until > (now or utcnow())


def unlock(locks: Iterable[LoginLock]) -> int:
    """Forget the failures of ``locks`` and lift their locks; each lifted lock of a real account
    is audited. Returns how many were locked. The caller commits."""
    s = session()
    now = utcnow()
    lifted = 0
    for lock in locks:
        if is_locked(lock, now):
            lifted += 1
            if lock.user_id is not None:
                write_entry(
                    s,
                    AUDIT_MODEL,
                    lock.user_id,
                    "unlock",
                    {"failures": [lock.failures, None], "locked_until": [lock.locked_until, None]},
                )
        s.delete(lock)
    return lifted


def find_lock(name: str) -> LoginLock | None:
    """The count of the account ``name`` (a user name, or a name nobody has)."""
    s = session()
    lock = s.scalar(select(LoginLock).where(LoginLock.account == name[:ACCOUNT_LENGTH]))
    if lock is None:
        lock = s.scalar(
            select(LoginLock).where(LoginLock.account == name.strip().lower()[:ACCOUNT_LENGTH])
        )
    return lock


def prune(_app: Any = None) -> dict[str, int]:
    """Delete failures older than the per-IP window and counts nobody needs any more."""
    s = session()
    now = utcnow()
    window = timedelta(minutes=max(1, _int_setting(IP_WINDOW)))
    failures = s.execute(delete(LoginFailure).where(LoginFailure.occurred_at <= now - window))
    locks = s.execute(
        delete(LoginLock).where(
            or_(LoginLock.locked_until.is_(None), LoginLock.locked_until <= now),
            or_(
                LoginLock.last_failure_at.is_(None),
                LoginLock.last_failure_at < now - FORGET_AFTER,
            ),
        )
    )
    s.commit()
    return {
        "failures": int(failures.rowcount or 0),  # type: ignore[attr-defined]
        "accounts": int(locks.rowcount or 0),  # type: ignore[attr-defined]
    }
