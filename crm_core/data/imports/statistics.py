"""The query planner's view of an import's target table, kept current while the job adds to it.

A table the planner has no statistics of, or has statistics of from when it was a tenth of its
size, gets plans made for a small table: PostgreSQL then reads the whole customer table for a
batch's duplicate-rule lookup instead of probing the phone index. A job analyses the table
when it starts if it never was, and again each time the records it added have doubled the
table since the last analysis (about log2 of the growth: a 100,000-row file into an empty
table, a dozen quick sampled analyses; into a table of a million, none).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from ...db import analyze, statistics_missing


class TableStatistics:
    """Statistics of ``model``'s table during one job run in ``session``."""

    def __init__(self, session: Session, model: type) -> None:
        self.session = session
        self.table: Any = inspect(model).local_table
        connection = session.connection()
        if statistics_missing(connection, self.table.name):
            session.commit()
            analyze(session.connection(), self.table.name)
            session.commit()
        self.size = self._size()
        self.next_at = max(self.size, 1000)
        self.added = 0

    def _size(self) -> int:
        """The highest id: about the number of rows (records are archived, not deleted), read
        from the index at once where ``count(*)`` would read the table."""
        pk = next(iter(self.table.primary_key.columns))
        size = self.session.scalar(select(func.max(pk))) or 0
        self.session.commit()
        return int(size)

    def grew(self, added: int) -> None:
        """The job committed ``added`` new records (call between transactions). MariaDB is
        left alone: InnoDB recalculates a table's statistics once a tenth of it changed."""
        self.added += added
        if self.added < self.next_at or self.session.get_bind().dialect.name == "mysql":
            return
        analyze(self.session.connection(), self.table.name)
        self.session.commit()
        self.next_at = self.added + self.size + self.added
