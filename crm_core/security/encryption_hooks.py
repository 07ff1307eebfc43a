"""Encryption at rest, registered like any module: the blind index table and the job that
brings stored values to their fields' marks."""

from __future__ import annotations

from ..hookimpl import hookimpl
from ..specs import JobSpec
from .blind_index import BlindIndex
from .rotation import sync_marked


@hookimpl
def register_models() -> list[type]:
    return [BlindIndex]


@hookimpl
def register_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            "core.encryption_sync",
            sync_marked,
            "interval",
            {"minutes": 1},
            title="Encrypt or decrypt the values of fields whose encryption changed",
        )
    ]
