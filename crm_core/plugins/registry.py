"""The per-app plugin registry: the PluginManager, what each plugin registered, and its state.

Reachable as ``current_app.extensions["crm"]``. Nothing here is module-global, so several apps
(tenants, tests) live side by side in one process.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pluggy
from flask import g, has_app_context, has_request_context
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .. import hookspecs
from ..db import session
from ..specs import JobSpec, PanelSpec, SettingSpec
from .discovery import PluginInfo
from .models import DISABLED, ENABLED, INSTALLED, PluginState

log = logging.getLogger(__name__)

CORE = "core"


class CrmRegistry:
    """Everything the core knows about the plugins of one app."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("crm")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.owner_of_module: dict[str, str] = {}  # pluggy plugin name -> owning plugin
        self.owner_of_endpoint: dict[str, str] = {}  # blueprint name -> owning plugin
        self.settings: dict[str, SettingSpec] = {}
        self.setting_owner: dict[str, str] = {}
        self.jobs: list[tuple[str, JobSpec]] = []
        self.panels: list[tuple[str, PanelSpec]] = []
        self.commands: list[tuple[str, Any]] = []
        self.runtime_errors: dict[str, str] = {}
        self.event_types: dict[str, tuple[str, Any]] = {}

    # -- registration -------------------------------------------------------------------------
    def register_core(self, module: ModuleType, part: str) -> None:
        """Register one of the core's own hook modules; the core can never be disabled."""
        pm_name = f"{CORE}:{part}"
        self.pm.register(module, name=pm_name)
        self.owner_of_module[pm_name] = CORE

    def register_plugin(self, info: PluginInfo) -> None:
        """Remember a discovered plugin and, when it loaded, register its hooks."""
        self.plugins[info.name] = info
        if info.loaded and info.module is not None:
            try:
                self.pm.register(info.module, name=info.name)
                self.owner_of_module[info.name] = info.name
            except Exception:  # noqa: BLE001 - a plugin with bad hooks is shown, never fatal
                info.error = traceback.format_exc(limit=4)

    # -- calling hooks ------------------------------------------------------------------------
    def collect(
        self, hook: str, *, only_enabled: bool = True, **kwargs: Any
    ) -> Iterator[tuple[str, Any]]:
        """Call every implementation of ``hook`` on its own, yielding ``(owner, result)``.

        An exception is logged and recorded against its plugin; the others still run.
        """
        caller = getattr(self.pm.hook, hook)
        enabled = self.enabled_names() if only_enabled else None
        # pluggy lists implementations last-registered first; call in registration order.
        for impl in reversed(caller.get_hookimpls()):
            owner = self.owner_of_module.get(impl.plugin_name, impl.plugin_name)
            if enabled is not None and owner != CORE and owner not in enabled:
                continue
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception:  # noqa: BLE001 - isolation is the point
                self.record_error(owner, f"{hook}: {traceback.format_exc(limit=6)}")
                continue
            if result is not None:
                yield owner, result

    def collect_specs(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Flatten the lists that declarative hooks return into ``(owner, spec)`` pairs."""
        return [
            (owner, spec)
            for owner, specs in self.collect(hook, only_enabled=False, **kwargs)
            for spec in specs
        ]

    def record_error(self, owner: str, message: str) -> None:
        """Keep a plugin's run-time error where the Modules page shows it."""
        log.error("plugin %s failed: %s", owner, message)
        self.runtime_errors[owner] = message
        if owner == CORE or not has_app_context():
            return
        if has_request_context():
            # Stored once the request is done: the request may hold the database's write lock
            # right now (SQLite), and a second connection would wait for it.
            g.setdefault("crm_unsaved_errors", {})[owner] = message
            return
        self._store_error(owner, message)

    def save_request_errors(self) -> None:
        """Store the plugin errors a request recorded (called after each request)."""
        for owner, message in g.pop("crm_unsaved_errors", {}).items():
            self._store_error(owner, message)

    def _store_error(self, owner: str, message: str) -> None:
        try:
            # A separate session: the caller's transaction may be the one that failed.
            with Session(session().get_bind()) as s, s.begin():
                row = s.scalar(select(PluginState).where(PluginState.name == owner))
                if row is not None:
                    row.last_error = message[-4000:]
        except SQLAlchemyError:
            log.exception("could not record the error of plugin %s", owner)

    def errors(self) -> dict[str, str]:
        """Each plugin's error, if it has one: why it did not load, else what it last failed at
        in this process, else the failure another process (a worker, the scheduler, the event
        dispatcher) stored on its state row."""
        try:
            stored = {
                name: error
                for name, error in session().execute(
                    select(PluginState.name, PluginState.last_error).where(
                        PluginState.last_error.is_not(None)
                    )
                )
            }
        except SQLAlchemyError:  # before `crm upgrade` there is no state table yet
            session().rollback()
            stored = {}
        out: dict[str, str] = {}
        for name in self.plugins:
            error = self.plugins[name].error or self.runtime_errors.get(name) or stored.get(name)
            if error:
                out[name] = error
        return out

    # -- state --------------------------------------------------------------------------------
    def stored_states(self) -> dict[str, str]:
        """Plugin states as stored in this app's database (read once per request)."""
        if has_request_context() and "crm_plugin_states" in g:
            return g.crm_plugin_states  # type: ignore[no-any-return]
        try:
            rows = session().execute(select(PluginState.name, PluginState.state)).all()
            states = {name: state for name, state in rows}
        except SQLAlchemyError:
            session().rollback()
            states = {}
        if has_request_context():
            g.crm_plugin_states = states
        return states

    def state_of(self, name: str) -> str:
        """The effective state of a plugin: stored, or implied for a table-less auto-enabled one."""
        if name == CORE:
            return ENABLED
        info = self.plugins.get(name)
        stored = self.stored_states().get(name)
        if info is None or not info.loaded:
            return stored or "available"
        if (
            stored is None
            and info.manifest
            and info.manifest.auto_enable
            and not info.manifest.migrations
        ):
            return ENABLED
        return stored or "available"

    def enabled_names(self) -> set[str]:
        """Names of the plugins whose screens, APIs, jobs and handlers are live now: enabled and
        loaded (a plugin stored as enabled that no longer loads has nothing live)."""
        return {
            name
            for name, info in self.plugins.items()
            if info.loaded and self.state_of(name) == ENABLED
        }

    def is_enabled(self, owner: str) -> bool:
        """True for the core and for a loaded plugin that is enabled now."""
        if owner == CORE:
            return True
        info = self.plugins.get(owner)
        return info is not None and info.loaded and self.state_of(owner) == ENABLED

    def is_installed(self, name: str) -> bool:
        """True once the plugin's tables exist (installed, enabled or disabled)."""
        return self.state_of(name) in (INSTALLED, ENABLED, DISABLED)

    def forget_cached_states(self) -> None:
        if has_request_context():
            g.pop("crm_plugin_states", None)

    def ordered(self) -> list[PluginInfo]:
        return list(self.plugins.values())
