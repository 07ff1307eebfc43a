"""The ``crm`` command: every admin task, one module per command group."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo

from ..app import create_app
from ..security.audit import audit_channel
from . import backup, config, db, demo, events, imports, jobs, keys, plugins, privacy, users


def _make_app(*_args: object, **_kwargs: object):  # type: ignore[no-untyped-def]
    return create_app()


class CrmGroup(FlaskGroup):
    """Flask's command group plus the commands plugins register through ``register_commands``."""

    def invoke(self, ctx: click.Context) -> object:
        with audit_channel("cli"):  # what a command writes is audited as channel "cli"
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(name for name, _cmd in self._plugin_commands(ctx))
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str):  # type: ignore[no-untyped-def]
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        return dict(self._plugin_commands(ctx)).get(name)

    def _plugin_commands(self, ctx: click.Context) -> list[tuple[str, click.Command]]:
        info = ctx.ensure_object(ScriptInfo)
        try:
            app = info.load_app()
        except Exception:  # noqa: BLE001 - without an app there are just no plugin commands
            return []
        registry = app.extensions["crm"]
        return [
            (cmd.name or "", cmd)
            for owner, cmd in registry.commands
            if isinstance(cmd, click.Command) and owner in registry.plugins
        ]


main = CrmGroup(
    create_app=_make_app,
    add_version_option=True,
    load_dotenv=False,
    set_debug_flag=False,
    help="The CRM's command line: set up, upgrade, demo data, plugins, scheduler.",
)

for module in (backup, config, db, demo, events, imports, jobs, keys, plugins, privacy, users):
    for command in module.COMMANDS:
        main.add_command(command)

__all__ = ["current_app", "main"]
