"""Teams (a tree, for team-level visibility) and the CRM's profile of a login user."""

from __future__ import annotations

from flask_appbuilder import Model
from flask_appbuilder.security.sqla import models as _fab_models  # noqa: F401 - User
from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import TimestampMixin


class Team(TimestampMixin, Model):
    """A department. ``path`` is the materialised path of ids (``/1/4/9/``), so "this team and
    every team below it" is one indexed prefix query."""

    __tablename__ = "crm_team"
    __crm_audit__ = "team"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("crm_team.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    path: Mapped[str] = mapped_column(String(500), default="", nullable=False, index=True)
    region: Mapped[str | None] = mapped_column(String(50))
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)

    parent = relationship("Team", remote_side=[id], backref="children")
    manager = relationship("User", foreign_keys=[manager_id])

    def __str__(self) -> str:
        return self.name


class UserProfile(TimestampMixin, Model):
    """What the CRM knows about a login user beyond Flask-AppBuilder's ``ab_user`` row."""

    __tablename__ = "crm_user_profile"
    __crm_audit__ = "user_profile"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), unique=True, nullable=False)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("crm_team.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    phone: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(String(100))

    user = relationship("User", foreign_keys=[user_id])
    team = relationship("Team")
    manager = relationship("User", foreign_keys=[manager_id])

    def __str__(self) -> str:
        return str(self.user)
