"""The manifest every plugin module carries as ``manifest = crm_core.Manifest(...)``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class ManifestError(ValueError):
    """A manifest that cannot be used; the message says which field is wrong."""


@dataclass(frozen=True)
class Manifest:
    """What the core needs to know about a plugin before loading it.

    ``depends`` maps plugin names to version ranges (``{"sfa": ">=1.0,<2"}``, ``""`` for any);
    ``migrations`` is the path of the plugin's Alembic ``versions`` folder, or ``None`` when the
    plugin has no tables; ``table_prefix`` is the prefix of every table the plugin owns, which
    lets its migrations and uninstall touch nothing else.
    """

    name: str
    version: str
    title: str = ""
    phase: int = 1
    depends: dict[str, str] = field(default_factory=dict)
    requires_core: str = ""
    auto_enable: bool = False
    migrations: str | None = None
    table_prefix: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ManifestError(
                f"name: {self.name!r} must be 2-40 lower-case letters, digits or '_'"
            )
        try:
            Version(self.version)
        except InvalidVersion as exc:
            raise ManifestError(f"version: {self.version!r} is not a version") from exc
        if self.phase not in (1, 2, 3):
            raise ManifestError(f"phase: {self.phase!r} must be 1, 2 or 3")
        for dep, spec in {**self.depends, "requires_core": self.requires_core}.items():
            try:
                SpecifierSet(spec)
            except InvalidSpecifier as exc:
                raise ManifestError(f"depends[{dep}]: {spec!r} is not a version range") from exc
        if self.migrations and not self.table_prefix:
            raise ManifestError("table_prefix: required when the plugin has migrations")
        if self.table_prefix.startswith(("crm_", "ab_", "alembic")):
            raise ManifestError(
                f"table_prefix: {self.table_prefix!r} is reserved for the core; "
                "use the plugin's own name"
            )

    def accepts(self, dependency: str, version: str) -> bool:
        """True when ``version`` of ``dependency`` satisfies this manifest's range for it."""
        spec = self.requires_core if dependency == "core" else self.depends.get(dependency, "")
        return Version(version) in SpecifierSet(spec) if spec else True
