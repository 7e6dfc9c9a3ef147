"""The change log and stored vectors of the SQLite catalog database (what FAISS is built
from).

Every write to the database appends to the ``changes`` table in the same transaction
(:mod:`index.store`), so a reader that remembers the last ``change_seq`` it applied catches
up on exactly what happened since with :meth:`SQLiteChangeLog.changes_since`.
:meth:`~SQLiteChangeLog.snapshot` reads the newest ``change_seq`` and every stored product
seq in one read transaction, and :meth:`~SQLiteChangeLog.stored_vectors` streams the
``vectors`` table in chunks. The PostgreSQL store (:mod:`index.pg_store`) answers the same
questions with the same :class:`Change` records.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from index.sqlite_db import SQLiteDatabase

logger = logging.getLogger(__name__)

#: Ids per ``IN (...)`` list.
IN_CHUNK = 500


@dataclass(frozen=True)
class Change:
    """One change-log entry; ``vector`` is the added vector if the product still exists."""

    change_seq: int
    op: str
    seq: int | None
    vector: bytes | None


def decode_rows(rows: Sequence[Sequence], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(seq, vector bytes)`` rows as ``(ids (n,) int64, xb (n, dim) float32)``."""
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    xb = np.frombuffer(b"".join(bytes(r[1]) for r in rows), np.float32).reshape(len(rows), dim)
    return ids, xb


class SQLiteChangeLog(SQLiteDatabase):
    """The change-log queries of the SQLite catalog database."""

    def last_change(self) -> int:
        """The newest ``change_seq`` (0 when the log is empty)."""
        with self.errors("read"):
            row = self.conn().execute("SELECT MAX(change_seq) FROM changes").fetchone()
        return int(row[0] or 0)

    def pending_changes(self, change_seq: int) -> tuple[int, float | None]:
        """How many log entries follow ``change_seq``; the age of the oldest of them in
        seconds is not recorded by this store (``None``)."""
        with self.errors("read"):
            row = (
                self.conn()
                .execute("SELECT COUNT(*) FROM changes WHERE change_seq > ?", (change_seq,))
                .fetchone()
            )
        return int(row[0]), None

    def changes_since(self, change_seq: int, *, limit: int = 100_000) -> list[Change]:
        """Log entries after ``change_seq``, oldest first, with the vectors of the adds."""
        with self.errors("read"):
            rows = (
                self.conn()
                .execute(
                    "SELECT c.change_seq, c.op, c.seq, v.vector FROM changes c "
                    "LEFT JOIN vectors v ON c.op = 'add' AND v.seq = c.seq "
                    "WHERE c.change_seq > ? ORDER BY c.change_seq LIMIT ?",
                    (change_seq, limit),
                )
                .fetchall()
            )
        return [Change(*row) for row in rows]

    def snapshot(self) -> tuple[int, np.ndarray]:
        """``(last change_seq, every product seq)`` read in one snapshot."""
        with self.read() as conn:
            last = conn.execute("SELECT MAX(change_seq) FROM changes").fetchone()[0]
            seqs = np.fromiter(
                (r[0] for r in conn.execute("SELECT seq FROM vectors ORDER BY seq")), np.int64
            )
        return int(last or 0), seqs

    def stored_vectors(
        self, seqs: np.ndarray | None = None, *, dim: int, chunk: int = 65536
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stored vectors as ``(ids (n,) int64, xb (n, dim) float32)`` chunks.

        Args:
            seqs: only these products (missing ones are skipped); ``None`` for all.
            dim: vector length.
            chunk: rows per yielded chunk.
        """
        if seqs is None:
            after = -1
            while True:
                with self.errors("read"):
                    rows = (
                        self.conn()
                        .execute(
                            "SELECT seq, vector FROM vectors WHERE seq > ? ORDER BY seq LIMIT ?",
                            (after, chunk),
                        )
                        .fetchall()
                    )
                if not rows:
                    return
                yield decode_rows(rows, dim)
                after = rows[-1][0]
        wanted = [int(s) for s in seqs]
        for start in range(0, len(wanted), IN_CHUNK):
            part = wanted[start : start + IN_CHUNK]
            marks = ",".join("?" * len(part))
            with self.errors("read"):
                rows = (
                    self.conn()
                    .execute(f"SELECT seq, vector FROM vectors WHERE seq IN ({marks})", part)
                    .fetchall()
                )
            if rows:
                yield decode_rows(rows, dim)
