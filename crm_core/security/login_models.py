"""What login protection stores: failed logins per account name and per IP address.

Both live in the database, so every web process of one installation sees the same counts and
locks. A name nobody has is counted and locked like a real account, so the answers of the login
form never tell which user names exist.
"""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

#: Longest account name kept (FAB's e-mail column is as long; a longer input is cut).
ACCOUNT_LENGTH = 320


class LoginLock(Model):
    """Wrong passwords in a row for one account name, and the lock they led to."""

    __tablename__ = "crm_login_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The user's name when the account exists, else the typed name in lower case.
    account: Mapped[str] = mapped_column(String(ACCOUNT_LENGTH), nullable=False, unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("ab_user.id", ondelete="CASCADE"), index=True
    )
    failures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_failure_ip: Mapped[str | None] = mapped_column(String(45))
    locked_at: Mapped[datetime | None] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, index=True)

    user = relationship("User", foreign_keys=[user_id])

    def __repr__(self) -> str:
        return f"<LoginLock {self.account} {self.failures}>"


class LoginFailure(Model):
    """One failed login, kept for the per-IP limit and deleted once it is old."""

    __tablename__ = "crm_login_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ip: Mapped[str] = mapped_column(String(45), nullable=False)
    account: Mapped[str | None] = mapped_column(String(ACCOUNT_LENGTH))
    occurred_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)

    __table_args__ = (Index("ix_crm_login_failure_ip", "ip", "occurred_at"),)
