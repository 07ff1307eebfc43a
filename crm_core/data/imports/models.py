"""Import jobs and the problems found in their rows.

A job is one file imported into one model with one column mapping. It moves ``new`` →
``checked`` (after a dry run) → ``queued`` → ``running`` → ``done`` (or ``failed``).
``next_row`` is the checkpoint: every batch commits its records, its row problems and the
new checkpoint in one transaction, so a job stopped anywhere (a killed process, a restart)
goes on from the first row not committed and never writes a row twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ...db import utcnow

MODES = {
    "upsert": _l("Add new records and update existing ones"),
    "create": _l("Add new records only"),
    "update": _l("Update existing records only"),
}
STATUSES = {
    "new": _l("Waiting"),
    "checking": _l("Checking"),
    "checked": _l("Checked"),
    "queued": _l("Queued"),
    "running": _l("Importing"),
    "done": _l("Done"),
    "failed": _l("Failed"),
}


class ImportJob(Model):
    """One file imported (or checked) into one model."""

    __tablename__ = "crm_import_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    #: Where the uploaded file is kept, relative to ``CRM_FILES_DIR``.
    stored_path: Mapped[str] = mapped_column(String(500), nullable=False)
    checksum: Mapped[str] = mapped_column(String(64), nullable=False)
    file_format: Mapped[str] = mapped_column(String(10), nullable=False)
    encoding: Mapped[str | None] = mapped_column(String(20))
    #: ``{header position: field}``, positions as strings (JSON keys).
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    key_field: Mapped[str | None] = mapped_column(String(80))
    mode: Mapped[str] = mapped_column(String(10), nullable=False, default="upsert")
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="new")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    total_rows: Mapped[int | None] = mapped_column(Integer)
    next_row: Mapped[int] = mapped_column(Integer, nullable=False, default=2)
    created: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    warned: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: The dry run's figures: ``{"created": n, "updated": n, "failed": n, ...}``.
    checked: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    #: ``host:pid`` of the process running or checking the job.
    runner: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: Renewed by every batch: a running job whose heartbeat stopped is taken over.
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    user = relationship("User", foreign_keys=[user_id])

    __table_args__ = (Index("ix_crm_import_job_status", "status", "updated_at"),)

    def __str__(self) -> str:
        return f"{self.filename} → {self.model}"


class ImportProblem(Model):
    """A row of a job that was refused (or imported with a warning), and why."""

    __tablename__ = "crm_import_problem"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("crm_import_job.id", ondelete="CASCADE"), nullable=False
    )
    #: Found by the dry run (``True``) or by the import itself.
    dry_run: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    row_number: Mapped[int] = mapped_column(Integer, nullable=False)
    #: ``error`` (the row was not written) or ``warning`` (written, worth a look).
    level: Mapped[str] = mapped_column(String(10), nullable=False, default="error")
    field: Mapped[str | None] = mapped_column(String(80))
    message: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (Index("ix_crm_import_problem_job", "job_id", "dry_run", "row_number"),)
