"""The ``crm scheduler`` process: APScheduler with a SQLAlchemy job store, one active at a time.

A lease row (``crm_scheduler_lease``) names the process allowed to run jobs; it is renewed every
few seconds, and a second scheduler waits until the lease expires. Jobs persist with their next
run time, so a restart runs a missed job once (coalesced) and never twice.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import utcnow
from .models import SchedulerLease
from .runner import bind_process_app, scheduled

log = logging.getLogger(__name__)

LEASE_SECONDS = 30
RENEW_SECONDS = 10
JOB_TABLE = "crm_scheduler_jobs"


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire_lease(session: Session, holder: str, seconds: int = LEASE_SECONDS) -> bool:
    """Take or renew the lease; True when ``holder`` holds it afterwards."""
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    result = session.execute(
        update(SchedulerLease)
        .where(
            SchedulerLease.id == 1,
            (SchedulerLease.holder == holder) | (SchedulerLease.expires_at < now),
        )
        .values(holder=holder, expires_at=expires)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        session.commit()
        return True
    if session.scalar(select(SchedulerLease.id).where(SchedulerLease.id == 1)) is None:
        session.add(SchedulerLease(id=1, holder=holder, expires_at=expires))
        try:
            session.commit()
            return True
        except IntegrityError:
            session.rollback()
    session.rollback()
    return False


def release_lease(session: Session, holder: str) -> None:
    session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.id == 1, SchedulerLease.holder == holder)
        .values(expires_at=utcnow())
    )
    session.commit()


def build_scheduler(app: Flask) -> BackgroundScheduler:
    """A scheduler holding every registered job of the app, persisted in the CRM database."""
    with app.app_context():
        engine = app.appbuilder.session.get_bind()  # type: ignore[attr-defined]
        registry = app.extensions["crm"]
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone="UTC",
        )
        wanted = set()
        for _owner, spec in registry.jobs:
            wanted.add(spec.id)
            scheduler.add_job(
                scheduled,
                trigger=spec.trigger,
                args=[spec.id],
                id=spec.id,
                name=spec.title or spec.id,
                replace_existing=True,
                **spec.trigger_args,
            )
    scheduler._crm_wanted = wanted  # type: ignore[attr-defined]
    return scheduler


def run_scheduler(app: Flask, stop_after: float | None = None) -> None:
    """Block running jobs while this process holds the lease; ``stop_after`` (seconds) is for
    tests and one-off runs."""
    bind_process_app(app)
    holder = holder_name()
    with app.app_context():
        engine = app.appbuilder.session.get_bind()  # type: ignore[attr-defined]
    started = time.monotonic()
    scheduler: BackgroundScheduler | None = None
    with Session(engine) as lease_session:
        try:
            while stop_after is None or time.monotonic() - started < stop_after:
                if acquire_lease(lease_session, holder):
                    if scheduler is None:
                        log.info("scheduler %s holds the lease; starting jobs", holder)
                        scheduler = build_scheduler(app)
                        scheduler.start()
                        for job in scheduler.get_jobs():
                            if job.id not in scheduler._crm_wanted:  # type: ignore[attr-defined]
                                job.remove()  # a job whose plugin was uninstalled
                elif scheduler is not None:
                    log.warning("scheduler %s lost the lease; pausing", holder)
                    scheduler.shutdown(wait=True)
                    scheduler = None
                time.sleep(min(RENEW_SECONDS, stop_after or RENEW_SECONDS))
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            release_lease(lease_session, holder)
