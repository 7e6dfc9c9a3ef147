"""The change log and stored vectors of the PostgreSQL catalog database.

:class:`PostgresChangeLog` answers what :class:`index.change_log.SQLiteChangeLog` answers
for the embedded store — the entries after a ``change_seq`` with the vectors of the adds,
a consistent snapshot of every stored seq, the stored vectors in chunks — plus the age of
the oldest unapplied entry (PostgreSQL records when each entry was written).
:func:`log_changes` appends entries inside a write transaction and notifies the replicas.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import psycopg

from index.change_log import Change, decode_rows
from index.pg_db import CHANNEL, SCHEMA, PostgresDatabase

logger = logging.getLogger(__name__)

S = SCHEMA


class PostgresChangeLog(PostgresDatabase):
    """The change-log queries of the PostgreSQL catalog database."""

    def last_change(self) -> int:
        """The newest ``change_seq`` (0 when the log is empty)."""
        row = self.row(f"SELECT MAX(change_seq) FROM {S}.changes")
        return int(row[0] or 0) if row else 0

    def pending_changes(self, change_seq: int) -> tuple[int, float | None]:
        """How many log entries follow ``change_seq``, and the age in seconds of the oldest
        of them (``None`` when there are none)."""
        row = self.row(
            "SELECT COUNT(*), EXTRACT(EPOCH FROM clock_timestamp() - MIN(at))::float8 "
            f"FROM {S}.changes WHERE change_seq > %s",
            (change_seq,),
        )
        if row is None:
            return 0, None
        return int(row[0]), None if row[1] is None else max(0.0, float(row[1]))

    def changes_since(self, change_seq: int, *, limit: int = 100_000) -> list[Change]:
        """Log entries after ``change_seq``, oldest first, with the vectors of the adds."""
        rows = self.rows(
            f"SELECT c.change_seq, c.op, c.seq, v.vector FROM {S}.changes c "
            f"LEFT JOIN {S}.vectors v ON c.op = 'add' AND v.seq = c.seq "
            "WHERE c.change_seq > %s ORDER BY c.change_seq LIMIT %s",
            (change_seq, limit),
        )
        return [Change(int(c), op, s, None if v is None else bytes(v)) for c, op, s, v in rows]

    def snapshot(self) -> tuple[int, np.ndarray]:
        """``(last change_seq, every product seq)`` read in one snapshot."""
        with self.read() as conn:
            last = conn.execute(f"SELECT MAX(change_seq) FROM {S}.changes").fetchone()[0]
            rows = conn.execute(f"SELECT seq FROM {S}.vectors ORDER BY seq").fetchall()
        return int(last or 0), np.fromiter((r[0] for r in rows), np.int64, len(rows))

    def stored_vectors(
        self, seqs: np.ndarray | None = None, *, dim: int, chunk: int = 65536
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stored vectors as ``(ids (n,) int64, xb (n, dim) float32)`` chunks (all, or
        ``seqs``; missing ones are skipped)."""
        if seqs is None:
            after = -1
            while True:
                rows = self.rows(
                    f"SELECT seq, vector FROM {S}.vectors WHERE seq > %s ORDER BY seq LIMIT %s",
                    (after, chunk),
                )
                if not rows:
                    return
                yield decode_rows(rows, dim)
                after = rows[-1][0]
        wanted = [int(s) for s in seqs]
        for start in range(0, len(wanted), chunk):
            rows = self.rows(
                f"SELECT seq, vector FROM {S}.vectors WHERE seq = ANY(%s::bigint[])",
                (wanted[start : start + chunk],),
            )
            if rows:
                yield decode_rows(rows, dim)


def log_changes(conn: psycopg.Connection, op: str, seqs: list[int | None]) -> int:
    """Append ``op`` entries (in order) and notify the replicas; returns the last
    ``change_seq``."""
    row = conn.execute(
        f"INSERT INTO {S}.changes(op, seq) SELECT %s, s FROM unnest(%s::bigint[]) "
        "WITH ORDINALITY AS u(s, n) ORDER BY n RETURNING change_seq",
        (op, seqs),
    ).fetchall()
    last = max(int(r[0]) for r in row)
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(last)))
    return last
