"""``crm demo``: an initialised database with realistic demo data, optionally served at once."""

from __future__ import annotations

import os

import click
from flask import current_app
from flask.cli import with_appcontext
from rich.console import Console

from ..demo import seed_demo
from .db import upgrade_all
from .users import ensure_user

console = Console()


@click.command("demo")
@click.option("--customers", default=300, show_default=True, help="How many customers to add.")
@click.option("--serve", is_flag=True, help="Start the web server afterwards.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def demo_command(customers: int, serve: bool, host: str, port: int) -> None:
    """Set up the database with demo data (companies, contacts, reps, teams, follow-ups)."""
    upgrade_all()
    # The README's demo login admin / admin, on purpose below the password policy.
    ensure_user(
        "admin",
        "admin",
        "admin@example.cn",
        "Admin",
        first="管理员",
        last="系统",
        check_policy=False,
    )
    result = seed_demo(customers=customers)
    if result["skipped"]:
        console.print("Demo data is already there.")
    else:
        console.print(f"[green]Added {customers} demo customers.[/green]")
    url = f"http://{host}:{port}/"
    console.print(f"\nCRM: [bold]{url}[/bold]")
    console.print("Login: [bold]admin[/bold] / [bold]admin[/bold] (administrator)")
    for username, password, role in result["users"]:
        console.print(f"       {username} / {password} ({role})")
    if serve:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        # Flask's CLI sets FLASK_RUN_FROM_CLI, which makes app.run() return without serving.
        os.environ.pop("FLASK_RUN_FROM_CLI", None)
        app.run(host=host, port=port, debug=False, use_reloader=False)


COMMANDS = [demo_command]
