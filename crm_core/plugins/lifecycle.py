"""Moving a plugin through its states: install (migrate), enable, disable, uninstall."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ..db import session
from ..lowcode import picklists
from . import migrations
from .discovery import PluginInfo
from .models import AVAILABLE, DISABLED, ENABLED, INSTALLED, PluginState
from .registry import CrmRegistry


class LifecycleError(RuntimeError):
    """A state change that is not allowed now; the message says why and what to do."""


def _registry() -> CrmRegistry:
    return current_app.extensions["crm"]  # type: ignore[no-any-return]


def _engine() -> Engine:
    return session().get_bind()  # type: ignore[return-value]


def _info(name: str) -> PluginInfo:
    info = _registry().plugins.get(name)
    if info is None:
        raise LifecycleError(
            f"no plugin named {name!r} is installed with pip (see `crm plugins list`)"
        )
    if not info.loaded or info.manifest is None:
        raise LifecycleError(f"plugin {name!r} cannot be loaded: {info.error}")
    return info


def _row(name: str) -> PluginState:
    s = session()
    row = s.scalar(select(PluginState).where(PluginState.name == name))
    if row is None:
        row = PluginState(name=name, state=AVAILABLE)
        s.add(row)
    return row


def lineage(info: PluginInfo) -> migrations.Lineage | None:
    """The plugin's migration lineage, or ``None`` when it has no tables."""
    manifest = info.manifest
    if manifest is None or not manifest.migrations:
        return None
    return migrations.Lineage(info.name, manifest.migrations, (manifest.table_prefix,))


def install(name: str) -> str:
    """Migrate the plugin's tables to head; ``available`` becomes ``installed`` (or ``enabled``
    when the manifest asks for it). Safe to repeat: an installed plugin is just upgraded."""
    info = _info(name)
    registry = _registry()
    for dep in info.manifest.depends if info.manifest else {}:
        if not registry.is_installed(dep):
            install(dep)
    lin = lineage(info)
    if lin is not None:
        migrations.upgrade(_engine(), lin)
    row = _row(name)
    row.version = info.version
    if row.state == AVAILABLE:
        row.state = ENABLED if info.manifest and info.manifest.auto_enable else INSTALLED
    declared = registry.collect_specs("register_picklists")
    picklists.sync_defaults(session(), [(owner, s) for owner, s in declared if owner == name])
    session().commit()
    registry.forget_cached_states()
    return row.state


def enable(name: str) -> None:
    """Switch an installed plugin on: its screens, APIs, jobs and handlers go live at once."""
    info = _info(name)
    registry = _registry()
    state = registry.state_of(name)
    if state == AVAILABLE:
        raise LifecycleError(f"plugin {name!r} is not installed yet: run `crm upgrade` first")
    for dep in info.manifest.depends if info.manifest else {}:
        if not registry.is_enabled(dep):
            raise LifecycleError(f"plugin {name!r} needs {dep!r}: enable {dep!r} first")
    row = _row(name)
    row.state = ENABLED
    row.last_error = None
    session().commit()
    registry.forget_cached_states()
    registry.runtime_errors.pop(name, None)


def disable(name: str) -> None:
    """Switch a plugin off; its data stays and comes back when it is enabled again."""
    _info(name)
    registry = _registry()
    users = [p for p in registry.plugins[name].dependents if registry.is_enabled(p)]
    if users:
        raise LifecycleError(f"plugin {name!r} is needed by {', '.join(users)}: disable them first")
    if registry.state_of(name) == AVAILABLE:
        raise LifecycleError(f"plugin {name!r} is not installed")
    row = _row(name)
    row.state = DISABLED
    session().commit()
    registry.forget_cached_states()


def uninstall(name: str, confirm: bool) -> None:
    """Drop the plugin's tables (after explicit confirmation) and mark it ``available``."""
    if not confirm:
        raise LifecycleError(f"uninstalling {name!r} deletes its tables and data; confirm to go on")
    info = _info(name)
    registry = _registry()
    users = [p for p in info.dependents if registry.is_installed(p)]
    if users:
        raise LifecycleError(
            f"plugin {name!r} is needed by {', '.join(users)}: uninstall them first"
        )
    lin = lineage(info)
    if lin is not None:
        migrations.downgrade(_engine(), lin, "base")
    row = _row(name)
    row.state = AVAILABLE
    session().commit()
    registry.forget_cached_states()
