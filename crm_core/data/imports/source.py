"""Reading an import file: CSV in UTF-8 (with or without BOM) or GBK/GB18030, or XLSX.

A file is read as a header row and data rows of text cells, each data row with its line number
as a spreadsheet shows it (the header is row 1). Rows are streamed: a file of any size is never
held in memory as a whole, and reading can start at any row (a resumed import skips what is
done).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask_babel import gettext as _

from ...errors import CrmError

FORMATS = ("csv", "xlsx")
#: Bytes read to tell the encoding and the delimiter.
SAMPLE_BYTES = 1 << 20
DELIMITERS = ",;\t|"


class SourceError(CrmError):
    """The file cannot be read as a table (wrong type, broken, empty)."""

    status = 400


@dataclass(frozen=True)
class Row:
    """One data row: its number as a spreadsheet shows it and its cells as text."""

    number: int
    cells: list[str]


def file_format(filename: str) -> str:
    """``csv`` or ``xlsx`` by the file's extension; ``SourceError`` for anything else."""
    suffix = Path(filename).suffix.lower().lstrip(".")
    if suffix in ("csv", "txt"):
        return "csv"
    if suffix in ("xlsx", "xlsm"):
        return "xlsx"
    raise SourceError(_("Import a .csv or .xlsx file (this one is %(name)s).", name=filename))


def checksum(path: Path) -> str:
    """The file's SHA-256: the same file re-imported resumes or repeats the same job."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def detect_encoding(sample: bytes) -> str:
    """``utf-8-sig`` for a BOM, ``utf-8`` when the sample decodes as UTF-8, else ``gb18030``
    (a superset of GBK, which Chinese Excel writes)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3:  # the sample cut a character in two
            return "utf-8"
    try:
        sample.decode("gb18030")
    except UnicodeDecodeError:
        raise SourceError(
            _("The file is neither UTF-8 nor GBK/GB18030 text; save it as CSV UTF-8.")
        ) from None
    return "gb18030"


def _delimiter(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == datetime.min.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class Source:
    """A CSV or XLSX file to import: ``header``, then ``rows(start)``."""

    def __init__(self, path: Path, fmt: str, encoding: str | None = None) -> None:
        self.path = path
        self.format = fmt
        self.encoding = encoding
        self.delimiter = ","
        if fmt == "csv":
            with path.open("rb") as handle:
                sample = handle.read(SAMPLE_BYTES)
            self.encoding = encoding or detect_encoding(sample)
            text = sample.decode(self.encoding, errors="ignore")
            self.delimiter = _delimiter(text.lstrip("\ufeff"))
        self.header = self._header()
        if not any(self.header):
            raise SourceError(_("The file has no header row."))

    def _csv_rows(self) -> Iterator[list[str]]:
        assert self.encoding
        try:
            with self.path.open(encoding=self.encoding, newline="") as handle:
                for cells in csv.reader(handle, delimiter=self.delimiter):
                    yield [c.strip() for c in cells]
        except UnicodeDecodeError:
            raise SourceError(
                _("The file is not entirely %(encoding)s text.", encoding=self.encoding)
            ) from None
        except csv.Error as exc:
            raise SourceError(_("The CSV file is malformed: %(error)s", error=str(exc))) from None

    def _xlsx_rows(self) -> Iterator[list[str]]:
        from openpyxl import load_workbook

        try:
            book = load_workbook(self.path, read_only=True, data_only=True)
        except Exception:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
            raise SourceError(_("The file is not a readable Excel workbook.")) from None
        try:
            sheet = book.worksheets[0]
            for values in sheet.iter_rows(values_only=True):
                yield [_cell(v) for v in values]
        finally:
            book.close()

    def _all_rows(self) -> Iterator[list[str]]:
        return self._csv_rows() if self.format == "csv" else self._xlsx_rows()

    def _header(self) -> list[str]:
        for cells in self._all_rows():
            if any(cells):
                return [c.lstrip("\ufeff").strip() for c in cells]
            break
        raise SourceError(_("The file is empty."))

    def rows(self, start: int = 2) -> Iterator[Row]:
        """Data rows from spreadsheet row ``start`` on (blank rows are skipped, not counted
        as errors)."""
        for number, cells in enumerate(self._all_rows(), start=1):
            if number < max(start, 2):
                continue
            if any(cells):
                yield Row(number, cells)

    def count(self) -> int:
        """The number of non-blank data rows (reads the file once)."""
        return sum(1 for _row in self.rows())
