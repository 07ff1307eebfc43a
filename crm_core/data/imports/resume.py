"""Finishing imports nobody is running any more (job ``core.imports`` of ``crm scheduler``).

An import started from the screen runs in a thread of the web process; if that process stops
(a deploy, a crash), the job stays ``queued`` or ``running`` at its last checkpoint. This job
takes such imports over and finishes them from there.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from ...db import session as current_session
from ...db import utcnow
from ...errors import CrmError
from .engine import STALE_AFTER, _alive, run_job
from .models import ImportJob

log = logging.getLogger(__name__)
#: A queued import not started within this time is started by the scheduler.
QUEUED_AFTER = timedelta(minutes=1)


def abandoned() -> list[int]:
    """Ids of imports that should be running and are not."""
    now = utcnow()
    session = current_session()
    query = select(ImportJob.id, ImportJob.status, ImportJob.updated_at, ImportJob.runner).where(
        ImportJob.status.in_(("queued", "running"))
    )
    out = []
    for job_id, status, heartbeat, runner in session.execute(query):
        if (
            status == "queued"
            and heartbeat < now - QUEUED_AFTER
            or status == "running"
            and (heartbeat < now - STALE_AFTER or not _alive(runner))
        ):
            out.append(job_id)
    session.rollback()
    return out


def resume_abandoned(_app: Any = None) -> dict[str, Any]:
    """Finish every abandoned import; counts of the run for the job log."""
    finished = failed = 0
    for job_id in abandoned():
        try:
            run_job(job_id)
            finished += 1
        except CrmError as exc:
            log.warning("import %s could not be finished: %s", job_id, exc)
            failed += 1
    return {"finished": finished, "failed": failed}
