"""Python's garbage collector during an import.

An import makes tens of objects per row (records being checked, their states, values, results).
Each time enough of them outlive a batch, Python's cyclic collector runs a full collection,
which walks every object alive in the process — the application, its mappers, its templates —
and on a long file that walk costs about a third of the import's time. While a job runs, the
objects that were alive before it began are set aside (``gc.freeze``), so collections only walk
what the job made; they are put back when the job ends. Nothing is collected later than it
would be but for cycles among those older objects, which wait for the job's end.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_running = 0


@contextmanager
def older_objects_set_aside() -> Iterator[None]:
    """Set aside the objects alive now for the block (jobs in other threads share it)."""
    global _running
    with _lock:
        if _running == 0:
            gc.freeze()
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                gc.unfreeze()
