"""SQLite connections for the catalog database: one per thread, explicit transactions.

:class:`SQLiteDatabase` opens a connection per thread (in autocommit mode, with
``synchronous=FULL``: a transaction that returned is on disk), runs explicit read and write
transactions, and turns sqlite errors other than integrity errors into
:class:`~matcher.errors.CatalogError` naming the file. :class:`~index.store.CatalogStore`
adds the catalog's schema and queries.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from matcher.errors import CatalogError

logger = logging.getLogger(__name__)


class SQLiteDatabase:
    """Thread-safe access to one SQLite database file.

    Args:
        path: the database file.
        timeout: seconds a write waits for another writer before failing.
    """

    def __init__(self, path: Path, *, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._closed = False

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode; transactions are explicit)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise CatalogError("the catalog is closed")
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection."""
        with self._guard:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn the sqlite errors raised inside, except integrity errors, into a
        :class:`CatalogError` saying that ``what`` failed."""
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise CatalogError(
                f"catalog database {str(self.path)!r}: {what} failed: {exc}"
            ) from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error)."""
        conn = self.conn()
        with self.errors("write"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees one snapshot."""
        conn = self.conn()
        with self.errors("read"):
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
