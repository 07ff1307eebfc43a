"""Record rules as admins edit them: per role and model, which records it may read and write."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import utcnow

#: Scopes from narrowest to widest.
SCOPES = ("none", "own", "team", "tree", "all")
SCOPE_LABELS = {
    "none": _l("No records"),
    "own": _l("Own records"),
    "team": _l("Own team's records"),
    "tree": _l("Own team's and sub-teams' records"),
    "all": _l("All records"),
}
#: The model name that stands for every ruled model without a rule of its own.
ANY_MODEL = "*"


class RecordRule(Model):
    """Which records of ``model`` (a model class name, or ``*``) users of ``role`` may read and
    write, and whether they see the shared pool (records with no owner)."""

    __tablename__ = "crm_record_rule"
    __crm_audit__ = "record_rule"
    __table_args__ = (UniqueConstraint("role_id", "model", name="uq_crm_record_rule_role_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("ab_role.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    read_scope: Mapped[str] = mapped_column(String(10), nullable=False, default="own")
    write_scope: Mapped[str] = mapped_column(String(10), nullable=False, default="own")
    pool: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )

    role = relationship("Role")

    def __str__(self) -> str:
        return f"{self.role} / {self.model}"
