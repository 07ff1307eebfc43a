"""The cells of a batch as values, a column of the file at a time.

Each mapped column gets its conversion once per job (a picklist's words, a custom choice field's
labels, a column's type); the words a column repeats (a city, an industry, an owner, 是/否) are
converted once and remembered for the job. A cell that cannot be converted leaves its message
against the row and the field, in the order of the file's columns, as if each row were read
alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, Text

from . import convert
from .source import Row
from .targets import ImportField, convert_cell, custom_cell

#: Distinct cells remembered per column; past that, the memory starts afresh.
MEMORY = 20_000


@dataclass
class Column:
    """One mapped column of the file: where it is, what it fills, how a cell converts."""

    position: int
    key: str
    #: How a refused cell names its field (``custom.grade``, ``owner_id``).
    error_name: str
    #: ``None``: the cell is the value (text of at most ``length`` characters).
    convert: Callable[[str], Any] | None
    length: int | None = None
    #: Remembered conversions: cell → (value, message).
    memory: dict[str, tuple[Any, str | None]] | None = None


def column(
    position: int, f: ImportField, error_name: str, picklist: Callable[[ImportField, str], str]
) -> Column:
    """The reader of the column at ``position`` filling ``f``."""
    if f.kind == "custom":
        assert f.definition is not None
        definition = f.definition
        return Column(
            position, f.key, error_name, lambda text: custom_cell(definition, text), memory={}
        )
    if f.kind == "link":
        return Column(position, f.key, error_name, None)
    if f.picklist:
        return Column(position, f.key, error_name, lambda text: picklist(f, text), memory={})
    column_type = f.column.type
    if not f.aliases and isinstance(column_type, String | Text):
        return Column(position, f.key, error_name, None, getattr(column_type, "length", None))
    return Column(position, f.key, error_name, lambda text: convert_cell(f, text), memory={})


def _converted(col: Column, text: str) -> tuple[Any, str | None]:
    memory = col.memory
    assert memory is not None and col.convert is not None
    found = memory.get(text)
    if found is not None:
        value = found[0]
        return (list(value) if isinstance(value, list) else value), found[1]
    try:
        found = (col.convert(text), None)
    except ValueError as exc:
        found = (None, str(exc))
    if len(memory) >= MEMORY:
        memory.clear()
    memory[text] = found
    value = found[0]
    return (list(value) if isinstance(value, list) else value), found[1]


def _too_long(text: str, length: int) -> str:
    try:
        convert.to_text(text, length)
    except ValueError as exc:
        return str(exc)
    raise AssertionError(text)


def read(
    columns: list[Column], rows: list[Row], errors: list[list[tuple[str | None, str]]]
) -> list[dict[str, Any]]:
    """The values of ``rows`` by field key (``None`` for a blank cell); a cell's problem is
    added to the row's ``errors``."""
    out: list[dict[str, Any]] = [{} for _row in rows]
    for col in columns:
        position, key, length = col.position, col.key, col.length
        for index, row in enumerate(rows):
            cells = row.cells
            text = cells[position].strip() if position < len(cells) else ""
            values = out[index]
            if not text:
                values[key] = None
            elif col.convert is None:
                if length and len(text) > length:
                    errors[index].append((col.error_name, _too_long(text, length)))
                else:
                    values[key] = text
            else:
                value, message = _converted(col, text)
                if message is None:
                    values[key] = value
                else:
                    errors[index].append((col.error_name, message))
    return out
