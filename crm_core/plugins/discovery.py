"""Finding plugin modules: entry points of the ``crm.plugins`` group and the hooks directory."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from .manifest import Manifest, ManifestError

ENTRY_POINT_GROUP = "crm.plugins"


@dataclass
class PluginInfo:
    """A discovered plugin, loaded or not. ``error`` holds the traceback or message that keeps it
    from loading; such a plugin is listed with its error and does not take the app down."""

    name: str
    source: str
    module: ModuleType | None = None
    manifest: Manifest | None = None
    error: str | None = None
    dependents: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return self.module is not None and self.error is None

    @property
    def title(self) -> str:
        return (self.manifest.title if self.manifest else "") or self.name

    @property
    def version(self) -> str:
        return self.manifest.version if self.manifest else ""


def _manifest_of(module: ModuleType, fallback_name: str | None) -> Manifest:
    manifest = getattr(module, "manifest", None)
    if manifest is None and fallback_name is not None:
        # A site-local hooks file needs no manifest: it is enabled as soon as it is there.
        return Manifest(name=fallback_name, version="0", title=fallback_name, auto_enable=True)
    if not isinstance(manifest, Manifest):
        raise ManifestError("manifest: the module has no `manifest = crm_core.Manifest(...)`")
    return manifest


def _from_entry_point(ep: importlib.metadata.EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    source = f"{dist.name} {dist.version}" if dist else ep.value
    info = PluginInfo(name=ep.name, source=source)
    try:
        module = importlib.import_module(ep.value)
        info.manifest = _manifest_of(module, None)
        info.module = module
        if info.manifest.name != ep.name:
            info.error = (
                f"entry point {ep.name!r} names a plugin whose manifest says {info.manifest.name!r}"
            )
    except Exception:  # noqa: BLE001 - a broken plugin is shown, never fatal
        info.error = traceback.format_exc(limit=6)
    return info


def _from_hooks_file(path: Path) -> PluginInfo:
    name = f"hooks_{path.stem}"
    info = PluginInfo(name=name, source=str(path))
    try:
        spec = importlib.util.spec_from_file_location(f"crm_site_hooks.{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        info.manifest = _manifest_of(module, name)
        info.name = info.manifest.name
        info.module = module
    except Exception:  # noqa: BLE001 - a broken hooks file is shown, never fatal
        info.error = traceback.format_exc(limit=6)
    return info


def discover(hooks_dir: str | None, only: set[str] | None) -> list[PluginInfo]:
    """Every plugin on this machine, in discovery order. Two plugins with one name: both get an
    error rather than one silently winning."""
    found: list[PluginInfo] = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if only is None or ep.name in only:
            found.append(_from_entry_point(ep))
    if hooks_dir and Path(hooks_dir).is_dir():
        for path in sorted(Path(hooks_dir).glob("*.py")):
            if path.name.startswith("_"):
                continue
            info = _from_hooks_file(path)
            if only is None or info.name in only:
                found.append(info)
    seen: dict[str, PluginInfo] = {}
    for info in found:
        if info.name in seen:
            message = (
                f"two plugins are named {info.name!r}: {seen[info.name].source} and {info.source}"
            )
            seen[info.name].error = info.error = message
        else:
            seen[info.name] = info
    return found
