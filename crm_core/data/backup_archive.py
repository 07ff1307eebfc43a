"""Reading a backup archive (see :mod:`crm_core.data.backup`): its manifest, its tables row by
row, its files, and a check of every table against the count and checksum of the manifest."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from flask_babel import gettext as _

from .backup_tables import BackupError, TableSpec
from .backup_values import TableDigest

FORMAT = "crm-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES = "files/"


class Archive:
    """An open backup archive; use it as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
            manifest = json.loads(self._zip.read(MANIFEST))
        except (OSError, zipfile.BadZipFile, KeyError, ValueError):
            raise BackupError(
                _("%(path)s is not a CRM backup (no readable manifest.json)", path=path)
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BackupError(_("%(path)s is not a CRM backup", path=path))
        if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise BackupError(
                _(
                    "%(path)s was written by a newer CRM (archive format %(version)s); "
                    "upgrade this CRM first",
                    path=path,
                    version=manifest.get("format_version"),
                )
            )
        self.manifest: dict[str, Any] = manifest

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._zip.close()

    @property
    def tables(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("tables", []))

    @staticmethod
    def spec(entry: dict[str, Any]) -> TableSpec:
        return TableSpec(entry["name"], entry["lineage"], entry["columns"], entry["primary_key"])

    def rows(self, entry: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The archived rows of a table, as JSON values; :class:`BackupError` on damage."""
        member = entry["file"]
        try:
            with self._zip.open(member) as raw:
                for number, line in enumerate(raw, start=1):
                    try:
                        row = json.loads(line)
                    except ValueError:
                        raise BackupError(
                            _("%(member)s is damaged at line %(line)s", member=member, line=number)
                        ) from None
                    yield row
        except (KeyError, zipfile.BadZipFile, OSError) as exc:
            raise BackupError(
                _("%(member)s is missing or damaged: %(error)s", member=member, error=exc)
            ) from None

    def check(self) -> list[str]:
        """Every table whose rows do not match the manifest's count and checksum."""
        problems = []
        for entry in self.tables:
            try:
                digest = TableDigest(entry["columns"])
                for row in self.rows(entry):
                    digest.add(row)
            except BackupError as exc:
                problems.append(str(exc))
                continue
            if (digest.count, digest.sha256) != (entry["rows"], entry["sha256"]):
                problems.append(
                    _(
                        "table %(table)s: the archive holds %(found)s rows that do not match "
                        "the manifest (%(rows)s rows, checksum %(sha)s)",
                        table=entry["name"],
                        found=digest.count,
                        rows=entry["rows"],
                        sha=entry["sha256"][:12],
                    )
                )
        return problems

    def files(self) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
        """The archived files with their paths under the files directory; a path that would
        leave it (absolute, or with ``..``) makes the archive unusable."""
        found = []
        for info in self._zip.infolist():
            if not info.filename.startswith(FILES) or info.is_dir():
                continue
            relative = PurePosixPath(info.filename[len(FILES) :])
            if relative.is_absolute() or ".." in relative.parts:
                raise BackupError(
                    _("unsafe file name in the archive: %(name)s", name=info.filename)
                )
            found.append((info, relative))
        return found

    def extract_files(self, folder: Path) -> int:
        """Copy the archived files into ``folder``; returns how many."""
        count = 0
        for info, relative in self.files():
            target = folder.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with self._zip.open(info) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
            except zipfile.BadZipFile as exc:
                raise BackupError(
                    _("%(member)s is damaged: %(error)s", member=info.filename, error=exc)
                ) from None
            count += 1
        return count
