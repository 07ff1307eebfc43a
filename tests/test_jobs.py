"""Jobs: one active scheduler per database, every run logged, disabled owners skipped."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.db import session, utcnow
from crm_core.jobs.models import JobRun, SchedulerLease
from crm_core.jobs.runner import run_job
from crm_core.jobs.scheduler import acquire_lease, release_lease, run_scheduler
from crm_core.specs import JobSpec


def test_only_one_scheduler_holds_the_lease(app):
    with app.app_context():
        engine = session().get_bind()
        with Session(engine) as a, Session(engine) as b:
            assert acquire_lease(a, "host-a:1") is True
            assert acquire_lease(b, "host-b:2") is False  # a holds it
            assert acquire_lease(a, "host-a:1") is True  # renewing is fine
            a.execute(SchedulerLease.__table__.update().values(expires_at=utcnow() - timedelta(1)))
            a.commit()
            assert acquire_lease(b, "host-b:2") is True  # expired: b takes over
            release_lease(b, "host-b:2")
            assert acquire_lease(a, "host-a:1") is True


def test_failed_job_is_logged_with_its_error(app):
    registry = app.extensions["crm"]

    def broken(_app):  # type: ignore[no-untyped-def]
        raise ValueError("ERP unreachable")

    registry.jobs.append(("core", JobSpec("test.broken", broken, "interval", {"hours": 1})))
    try:
        with app.app_context():
            run = run_job("test.broken")
            assert run is not None and run.outcome == "error"
            assert "ERP unreachable" in run.error
            assert run.finished_at is not None
    finally:
        registry.jobs.pop()


def test_scheduler_process_runs_interval_jobs_and_logs_them(app):
    registry = app.extensions["crm"]
    ran = threading.Event()

    def tick(_app):  # type: ignore[no-untyped-def]
        ran.set()
        return {"ticks": 1}

    registry.jobs.append(("core", JobSpec("test.tick", tick, "interval", {"seconds": 1})))
    try:
        started = time.monotonic()
        run_scheduler(app, stop_after=3.5)
        assert ran.is_set()
        assert time.monotonic() - started < 20
        with app.app_context():
            runs = session().scalars(select(JobRun).where(JobRun.job_id == "test.tick")).all()
            assert runs and all(r.outcome == "ok" and r.counts == {"ticks": 1} for r in runs)
            lease = session().get(SchedulerLease, 1)
            assert lease.expires_at <= utcnow()  # released on the way out
    finally:
        registry.jobs.pop()
