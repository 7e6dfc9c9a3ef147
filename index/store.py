"""The catalog's SQLite database: the source of truth.

Tables::

    meta(key, value)                     catalog settings: uuid, dim, factory, embedder ...
    blobs(name, data)                    the embedder checkpoint
    products(seq, product_id, metadata, box, created_at, height, width)
    vectors(seq, vector)                 float32 embedding bytes
    images(seq, png)                     the reference image
    templates(seq, key, features)        cached matcher template features (optional)
    changes(change_seq, op, seq)         the change log: 'add' / 'delete' / 'reindex'

``seq`` is an ``AUTOINCREMENT`` key, never reused, and is the product's FAISS id. Every
write is one ``BEGIN IMMEDIATE`` transaction that also appends to ``changes``, so a reader
that remembers the last ``change_seq`` it applied can catch up on exactly what happened
since (:meth:`index.change_log.SQLiteChangeLog.changes_since`). The database runs in WAL
mode with ``synchronous=FULL``: a transaction that returned is on disk, and readers never
block writers. Each thread uses its own connection
(:class:`~index.sqlite_db.SQLiteDatabase`). Its product rows are the dataclasses of
:mod:`index.product_rows`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from index.backend import duplicate_error
from index.change_log import SQLiteChangeLog
from index.location import DB_NAME
from index.product_rows import NewProduct, ProductRow
from matcher.errors import CatalogError, ProductNotFoundError

logger = logging.getLogger(__name__)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL,
    box TEXT,
    created_at REAL NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (seq INTEGER PRIMARY KEY, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS images (seq INTEGER PRIMARY KEY, png BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS templates (
    seq INTEGER PRIMARY KEY, key TEXT NOT NULL, features BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (name TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS changes (
    change_seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, seq INTEGER
);
"""

_PRODUCT_COLUMNS = "p.seq, p.product_id, p.metadata, p.box, p.created_at, p.height, p.width"


class StaleEmbedderError(Exception):
    """The catalog's embedder changed since the caller last read it (internal)."""


class CatalogStore(SQLiteChangeLog):
    """Thread-safe access to one catalog database: its schema and its queries.

    Args:
        folder: the catalog folder.
        create: create the database when it does not exist.
        timeout: seconds a write waits for another writer before failing.

    Raises:
        CatalogError: the database is missing (and ``create`` is false) or unreadable.
    """

    def __init__(self, folder: Path, *, create: bool, timeout: float = 60.0) -> None:
        path = Path(folder) / DB_NAME
        if not path.exists() and not create:
            raise CatalogError(f"{str(folder)!r} holds no catalog ({DB_NAME} is missing)")
        super().__init__(path, timeout=timeout)
        self.location = str(folder)
        with self.errors("open"):
            conn = self.conn()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    def sizes(self) -> dict[str, int]:
        """Bytes of the database files."""
        files = [self.path, self.path.with_name(f"{DB_NAME}-wal")]
        return {p.name: p.stat().st_size for p in files if p.exists()}

    # -- meta ------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        """All settings."""
        with self.errors("read"):
            return dict(self.conn().execute("SELECT key, value FROM meta").fetchall())

    def initialise(self, values: dict[str, str], blobs: dict[str, bytes]) -> bool:
        """Write the settings of a new catalog unless another process already did.

        Returns:
            Whether this call created the catalog.
        """
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM meta WHERE key = 'uuid'").fetchone():
                return False
            _put(conn, values, blobs)
        return True

    def set_meta(self, values: dict[str, str], *, reindex: bool = False) -> int | None:
        """Write settings; with ``reindex`` also log a ``reindex`` change.

        Returns:
            The ``change_seq`` of the logged change, or ``None``.
        """
        with self.write() as conn:
            _put(conn, values, {})
            if reindex:
                return conn.execute("INSERT INTO changes(op) VALUES ('reindex')").lastrowid
        return None

    def replace_embedding(
        self,
        values: dict[str, str],
        blobs: dict[str, bytes],
        vectors: dict[int, np.ndarray],
    ) -> int | np.ndarray:
        """Swap every vector and the embedder settings in one transaction.

        Args:
            values: new settings (fingerprint, spec, dim, vectors version).
            blobs: the new embedder checkpoint.
            vectors: a new vector for every product.

        Returns:
            The ``change_seq`` of the logged ``reindex``; or, when products were added
            meanwhile (nothing is written then), their seqs.
        """
        with self.write() as conn:
            current = np.fromiter((r[0] for r in conn.execute("SELECT seq FROM vectors")), np.int64)
            new = np.setdiff1d(current, np.fromiter(vectors, np.int64, len(vectors)))
            if len(new):
                return new
            conn.execute("DELETE FROM vectors")
            conn.executemany(
                "INSERT INTO vectors(seq, vector) VALUES (?, ?)",
                [(int(s), np.asarray(vectors[int(s)], np.float32).tobytes()) for s in current],
            )
            _put(conn, values, blobs)
            return conn.execute("INSERT INTO changes(op) VALUES ('reindex')").lastrowid

    def blob(self, name: str) -> bytes | None:
        """A stored blob, or ``None``."""
        with self.errors("read"):
            row = self.conn().execute("SELECT data FROM blobs WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    # -- products --------------------------------------------------------------------------

    def insert(self, items: list[NewProduct], *, embedder: str) -> list[int]:
        """Add products in one transaction; returns their seqs.

        Args:
            items: the products.
            embedder: fingerprint of the embedder that made the vectors.

        Raises:
            DuplicateProductError: an id already exists (nothing is written).
            StaleEmbedderError: the catalog's embedder changed (nothing is written).
        """
        seqs = []
        try:
            with self.write() as conn:
                current = conn.execute(
                    "SELECT value FROM meta WHERE key = 'embedder_fingerprint'"
                ).fetchone()
                if current is None or current[0] != embedder:
                    raise StaleEmbedderError("the catalog's embedder was replaced")
                for item in items:
                    seq = conn.execute(
                        "INSERT INTO products(product_id, metadata, box, created_at, height, "
                        "width) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            item.product_id,
                            item.metadata,
                            item.box,
                            item.created_at,
                            item.height,
                            item.width,
                        ),
                    ).lastrowid
                    vector = np.ascontiguousarray(item.vector, dtype=np.float32).tobytes()
                    conn.execute("INSERT INTO vectors(seq, vector) VALUES (?, ?)", (seq, vector))
                    conn.execute("INSERT INTO images(seq, png) VALUES (?, ?)", (seq, item.png))
                    if item.template is not None:
                        conn.execute(
                            "INSERT INTO templates(seq, key, features) VALUES (?, ?, ?)",
                            (seq, *item.template),
                        )
                    conn.execute("INSERT INTO changes(op, seq) VALUES ('add', ?)", (seq,))
                    seqs.append(seq)
        except sqlite3.IntegrityError:
            raise duplicate_error(self, items) from None
        return seqs

    def delete(self, product_id: str) -> int:
        """Remove a product; returns its seq.

        Raises:
            ProductNotFoundError: unknown id.
        """
        with self.write() as conn:
            row = conn.execute(
                "SELECT seq FROM products WHERE product_id = ?", (product_id,)
            ).fetchone()
            if row is None:
                raise ProductNotFoundError(f"no product {product_id!r} in the catalog")
            seq = row[0]
            for table in ("products", "vectors", "images", "templates"):
                conn.execute(f"DELETE FROM {table} WHERE seq = ?", (seq,))
            conn.execute("INSERT INTO changes(op, seq) VALUES ('delete', ?)", (seq,))
        return seq

    def get(self, product_id: str) -> ProductRow:
        """The product with its image.

        Raises:
            ProductNotFoundError: unknown id.
        """
        with self.errors("read"):
            row = (
                self.conn()
                .execute(
                    f"SELECT {_PRODUCT_COLUMNS}, i.png FROM products p "
                    "JOIN images i ON i.seq = p.seq WHERE p.product_id = ?",
                    (product_id,),
                )
                .fetchone()
            )
        if row is None:
            raise ProductNotFoundError(f"no product {product_id!r} in the catalog")
        return ProductRow(*row)

    def page(self, after: str | None, limit: int) -> list[ProductRow]:
        """Up to ``limit`` products with ids greater than ``after``, by id."""
        with self.errors("read"):
            rows = (
                self.conn()
                .execute(
                    f"SELECT {_PRODUCT_COLUMNS}, i.png FROM products p "
                    "JOIN images i ON i.seq = p.seq WHERE p.product_id > ? "
                    "ORDER BY p.product_id LIMIT ?",
                    (after if after is not None else "", limit),
                )
                .fetchall()
            )
        return [ProductRow(*row) for row in rows]

    def existing(self, product_ids: Iterable[str]) -> set[str]:
        """Which of ``product_ids`` are in the catalog."""
        ids = list(product_ids)
        found: set[str] = set()
        with self.errors("read"):
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self.conn().execute(
                    f"SELECT product_id FROM products WHERE product_id IN ({marks})", chunk
                )
                found.update(r[0] for r in rows)
        return found

    def count(self) -> int:
        """Number of products."""
        with self.errors("read"):
            return int(self.conn().execute("SELECT COUNT(*) FROM products").fetchone()[0])

    def product_ids(self, seqs: Iterable[int]) -> dict[int, str]:
        """``seq -> product_id`` for the seqs that still exist."""
        seqs = [int(s) for s in seqs]
        if not seqs:
            return {}
        marks = ",".join("?" * len(seqs))
        with self.errors("read"):
            rows = self.conn().execute(
                f"SELECT seq, product_id FROM products WHERE seq IN ({marks})", seqs
            )
            return dict(rows.fetchall())

    # -- images ----------------------------------------------------------------------------

    def image_rows(
        self, seqs: np.ndarray | None = None, *, chunk: int = 256
    ) -> Iterator[list[ProductRow]]:
        """Products with their images in seq order, ``chunk`` at a time (all, or ``seqs``)."""
        query = f"SELECT {_PRODUCT_COLUMNS}, i.png FROM products p JOIN images i ON i.seq = p.seq "
        if seqs is not None:
            wanted = [int(s) for s in np.sort(seqs)]
            for start in range(0, len(wanted), chunk):
                part = wanted[start : start + chunk]
                marks = ",".join("?" * len(part))
                with self.errors("read"):
                    rows = self.conn().execute(f"{query} WHERE p.seq IN ({marks})", part).fetchall()
                if rows:
                    yield [ProductRow(*row) for row in rows]
            return
        after = -1
        while True:
            with self.errors("read"):
                rows = (
                    self.conn()
                    .execute(f"{query} WHERE p.seq > ? ORDER BY p.seq LIMIT ?", (after, chunk))
                    .fetchall()
                )
            if not rows:
                return
            yield [ProductRow(*row) for row in rows]
            after = rows[-1][0]

    # -- template features ------------------------------------------------------------------

    def template(self, product_id: str) -> tuple[int, str | None, bytes | None]:
        """A product's seq and cached ``(key, features)`` (``None`` when not cached).

        Raises:
            ProductNotFoundError: unknown id.
        """
        with self.errors("read"):
            row = (
                self.conn()
                .execute(
                    "SELECT p.seq, t.key, t.features FROM products p LEFT JOIN templates t "
                    "ON t.seq = p.seq WHERE p.product_id = ?",
                    (product_id,),
                )
                .fetchone()
            )
        if row is None:
            raise ProductNotFoundError(f"no product {product_id!r} in the catalog")
        return int(row[0]), row[1], None if row[2] is None else bytes(row[2])

    def template_keys(self, product_ids: Iterable[str]) -> dict[str, tuple[int, str | None]]:
        """``product_id -> (seq, key of the cached features or None)`` for the ids that
        exist, without the features themselves."""
        ids = list(product_ids)
        marks = ",".join("?" * len(ids))
        with self.errors("read"):
            rows = self.conn().execute(
                "SELECT p.product_id, p.seq, t.key FROM products p LEFT JOIN templates t "
                f"ON t.seq = p.seq WHERE p.product_id IN ({marks})",
                ids,
            )
            return {pid: (int(seq), key) for pid, seq, key in rows}

    def template_blobs(self, seqs: Iterable[int], key: str) -> dict[int, bytes]:
        """``seq -> features`` of the seqs whose cached features have ``key``."""
        wanted = [int(s) for s in seqs]
        marks = ",".join("?" * len(wanted))
        with self.errors("read"):
            rows = self.conn().execute(
                f"SELECT seq, features FROM templates WHERE key = ? AND seq IN ({marks})",
                [key, *wanted],
            )
            return {int(seq): bytes(data) for seq, data in rows}

    def set_template(self, seq: int, key: str, features: bytes) -> None:
        """Cache template features (ignored if the product was deleted meanwhile)."""
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM products WHERE seq = ?", (seq,)).fetchone():
                conn.execute(
                    "INSERT INTO templates(seq, key, features) VALUES (?, ?, ?) "
                    "ON CONFLICT(seq) DO UPDATE SET key = excluded.key, "
                    "features = excluded.features",
                    (seq, key, features),
                )


def _put(conn: sqlite3.Connection, values: dict[str, str], blobs: dict[str, bytes]) -> None:
    conn.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        sorted(values.items()),
    )
    conn.executemany(
        "INSERT INTO blobs(name, data) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET data = excluded.data",
        sorted(blobs.items()),
    )
