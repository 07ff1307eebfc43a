"""Dependency checks and load order (a topological sort of the manifests)."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

from .discovery import PluginInfo


def resolve(plugins: list[PluginInfo], core_version: str) -> list[PluginInfo]:
    """Return the plugins in dependency order, after marking with an error every plugin whose
    dependencies are missing, broken, of the wrong version, or circular."""
    by_name = {p.name: p for p in plugins}
    usable = {p.name for p in plugins if p.loaded}
    changed = True
    while changed:  # a plugin depending on a blocked plugin is blocked too
        changed = False
        for p in plugins:
            if p.name not in usable or p.manifest is None:
                continue
            problem = _dependency_problem(p, by_name, usable, core_version)
            if problem:
                p.error = problem
                usable.discard(p.name)
                changed = True
    graph = {
        p.name: set(p.manifest.depends) if p.manifest else set()
        for p in plugins
        if p.name in usable
    }
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        cycle = " → ".join(exc.args[1])
        for name in exc.args[1]:
            if name in by_name:
                by_name[name].error = f"depends: circular dependency {cycle}"
        return resolve(plugins, core_version)
    for p in plugins:
        if p.manifest:
            for dep in p.manifest.depends:
                if dep in by_name:
                    by_name[dep].dependents.append(p.name)
    ordered = [by_name[n] for n in order if n in by_name]
    return ordered + [p for p in plugins if p.name not in usable]


def _dependency_problem(
    plugin: PluginInfo, by_name: dict[str, PluginInfo], usable: set[str], core_version: str
) -> str | None:
    manifest = plugin.manifest
    assert manifest is not None
    if not manifest.accepts("core", core_version):
        return f"requires_core: needs core {manifest.requires_core}, this is {core_version}"
    for dep, spec in manifest.depends.items():
        if dep not in by_name:
            return f"depends: plugin {dep!r} is not installed (pip install it first)"
        if dep not in usable:
            return f"depends: plugin {dep!r} cannot be loaded"
        dep_manifest = by_name[dep].manifest
        if dep_manifest and not manifest.accepts(dep, dep_manifest.version):
            return f"depends: needs {dep} {spec}, found {dep_manifest.version}"
    return None
