"""Running one registered job with its run logged; used by the scheduler and ``crm jobs run``."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, current_app
from sqlalchemy.orm import Session

from ..db import session, utcnow
from ..security.audit import audit_channel
from .models import JobRun

log = logging.getLogger(__name__)

# The app of a `crm scheduler` process: APScheduler's job store keeps jobs as
# "module:function" references, so the function finds the app here. One app per process.
_process_app: dict[str, Flask] = {}


def bind_process_app(app: Flask) -> None:
    """Tell persisted jobs which app this scheduler process runs for."""
    _process_app["app"] = app


def scheduled(job_id: str) -> None:
    """Entry point stored in the job store for every job."""
    app = _process_app["app"]
    with app.app_context():
        run_job(job_id)


def run_job(job_id: str) -> JobRun | None:
    """Run job ``job_id`` now, logging start, end, outcome and counts. Returns the run, or
    ``None`` when the job's plugin is disabled (nothing runs then)."""
    registry = current_app.extensions["crm"]
    found = [(owner, spec) for owner, spec in registry.jobs if spec.id == job_id]
    if not found:
        raise KeyError(f"no job {job_id!r}")
    owner, spec = found[0]
    if not registry.is_enabled(owner):
        return None
    engine = session().get_bind()
    with Session(engine, expire_on_commit=False) as log_session:
        run = JobRun(job_id=job_id, plugin=owner, started_at=utcnow(), outcome="running")
        log_session.add(run)
        log_session.commit()
        try:
            with audit_channel("job"):
                counts: Any = spec.func(current_app._get_current_object())  # type: ignore[attr-defined]
                session().commit()
        except Exception:  # noqa: BLE001 - a failed job is logged and the scheduler goes on
            session().rollback()
            run.outcome = "error"
            run.error = traceback.format_exc(limit=8)[-4000:]
            log.exception("job %s failed", job_id)
        else:
            run.outcome = "ok"
            run.counts = counts if isinstance(counts, dict) else None
        run.finished_at = utcnow()
        log_session.commit()
    return run
