"""``crm scheduler`` and ``crm jobs``."""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext
from rich.console import Console
from rich.table import Table

from ..jobs.runner import run_job
from ..jobs.scheduler import run_scheduler


@click.command("scheduler")
@click.option("--stop-after", type=float, default=None, help="Seconds to run, then stop.")
@with_appcontext
def scheduler_command(stop_after: float | None) -> None:
    """Run scheduled jobs (one active scheduler per database; others wait)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run_scheduler(current_app._get_current_object(), stop_after=stop_after)  # type: ignore[attr-defined]


@click.group("jobs")
def jobs_group() -> None:
    """Scheduled jobs."""


@jobs_group.command("list")
@with_appcontext
def list_jobs() -> None:
    """List every registered job and the module that owns it."""
    registry = current_app.extensions["crm"]
    table = Table("job", "module", "trigger", "title")
    for owner, spec in registry.jobs:
        table.add_row(spec.id, owner, f"{spec.trigger} {spec.trigger_args}", spec.title)
    Console().print(table)


@jobs_group.command("run")
@click.argument("job_id")
@with_appcontext
def run_job_command(job_id: str) -> None:
    """Run one job now, logged like a scheduled run."""
    try:
        run = run_job(job_id)
    except KeyError as exc:
        raise click.ClickException(str(exc)) from None
    if run is None:
        raise click.ClickException(f"the module owning {job_id} is disabled")
    click.echo(f"{job_id}: {run.outcome} {run.counts or ''}")
    if run.outcome != "ok":
        raise click.ClickException(run.error or "failed")


COMMANDS = [scheduler_command, jobs_group]
