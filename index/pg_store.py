"""The catalog in a PostgreSQL database: the truth shared by every service machine.

:class:`PostgresStore` is the :class:`~index.backend.CatalogBackend` of a
``postgresql://`` catalog, with the semantics of the embedded SQLite store
(:mod:`index.store`): every write is one transaction that also appends to the change log;
``seq`` (a product's FAISS id) and ``change_seq`` are identity columns, never reused. A
write takes the catalog's write lock first (:mod:`index.pg_db`), so log entries become
visible in ``change_seq`` order, and announces itself with ``NOTIFY`` at commit so replicas
wake up at once (:mod:`index.replica`). Opening applies the schema migrations
(:mod:`index.pg_schema`); the change-log queries are in :mod:`index.pg_changes`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import numpy as np
import psycopg

from index.backend import duplicate_error
from index.image_store import ImageStore, read_image
from index.pg_changes import PostgresChangeLog, log_changes
from index.pg_db import SCHEMA
from index.pg_schema import prepare_schema
from index.product_rows import NewProduct, ProductRow
from index.store import StaleEmbedderError
from matcher.errors import (
    CatalogError,
    InvalidArgumentError,
    ProductNotFoundError,
)

logger = logging.getLogger(__name__)

S = SCHEMA
_PRODUCT_COLUMNS = (
    "p.seq, p.product_id, p.metadata::text, p.box::text, p.created_at, p.height, p.width"
)
_WITH_IMAGE = (
    f"SELECT {_PRODUCT_COLUMNS}, i.png, i.uri FROM {S}.products p JOIN {S}.images i USING (seq)"
)


class PostgresStore(PostgresChangeLog):
    """Thread-safe access to a catalog in a PostgreSQL database.

    Args:
        url: the database URL.
        pool_size: most connections this process opens.
        create: create the catalog's schema in a database without one.
        image_store: where new reference images go (:mod:`index.image_store`); ``None``:
            into the database.

    Raises:
        CatalogError: unreachable, login refused, a newer schema, or missing privileges.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int | None = None,
        create: bool = True,
        image_store: ImageStore | None = None,
    ) -> None:
        self.image_store = image_store
        super().__init__(url, **({} if pool_size is None else {"pool_size": pool_size}))
        try:
            prepare_schema(self, create=create)
        except BaseException:
            self.close()
            raise

    def sizes(self) -> dict[str, int]:
        """Bytes of the catalog's tables and their indexes."""
        row = self.row(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
            "AND c.relkind = 'r'",
            (S,),
        )
        return {"database": int(row[0]) if row else 0}

    # -- meta ------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        """All settings."""
        return dict(self.rows(f"SELECT key, value FROM {S}.meta"))

    def initialise(self, values: dict[str, str], blobs: dict[str, bytes]) -> bool:
        """Write the settings of a new catalog unless another process already did."""
        with self.write() as conn:
            if conn.execute(f"SELECT 1 FROM {S}.meta WHERE key = 'uuid'").fetchone():
                return False
            _put(conn, values, blobs)
        return True

    def set_meta(self, values: dict[str, str], *, reindex: bool = False) -> int | None:
        """Write settings; with ``reindex`` also log a ``reindex`` change (its seq)."""
        with self.write() as conn:
            _put(conn, values, {})
            if reindex:
                return log_changes(conn, "reindex", [None])
        return None

    def replace_embedding(
        self,
        values: dict[str, str],
        blobs: dict[str, bytes],
        vectors: dict[int, np.ndarray],
    ) -> int | np.ndarray:
        """Swap every vector and the embedder settings in one transaction (see
        :meth:`index.store.CatalogStore.replace_embedding`)."""
        with self.write() as conn:
            rows = conn.execute(f"SELECT seq FROM {S}.vectors").fetchall()
            current = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            new = np.setdiff1d(current, np.fromiter(vectors, np.int64, len(vectors)))
            if len(new):
                return new
            with conn.cursor() as cur:
                cur.executemany(
                    f"UPDATE {S}.vectors SET vector = %s WHERE seq = %s",
                    [(np.asarray(vectors[int(s)], np.float32).tobytes(), int(s)) for s in current],
                )
            _put(conn, values, blobs)
            return log_changes(conn, "reindex", [None])

    def blob(self, name: str) -> bytes | None:
        """A stored blob, or ``None``."""
        row = self.row(f"SELECT data FROM {S}.blobs WHERE name = %s", (name,))
        return None if row is None else bytes(row[0])

    # -- products --------------------------------------------------------------------------

    def insert(self, items: list[NewProduct], *, embedder: str) -> list[int]:
        """Add products in one transaction; returns their seqs.

        Raises:
            DuplicateProductError: an id already exists (nothing is written).
            StaleEmbedderError: the catalog's embedder changed (nothing is written).
            InvalidArgumentError: metadata PostgreSQL cannot store (a NUL character).
        """
        if not items:
            return []
        uris = [self.image_store.put(i.png) for i in items] if self.image_store else None
        try:
            with self.write() as conn:
                current = conn.execute(
                    f"SELECT value FROM {S}.meta WHERE key = 'embedder_fingerprint'"
                ).fetchone()
                if current is None or current[0] != embedder:
                    raise StaleEmbedderError("the catalog's embedder was replaced")
                seqs = _insert_products(conn, items, uris)
                log_changes(conn, "add", seqs)
        except psycopg.IntegrityError:
            raise duplicate_error(self, items) from None
        except CatalogError as exc:
            if isinstance(exc.__cause__, psycopg.errors.UntranslatableCharacter):
                raise InvalidArgumentError(
                    "metadata must not contain NUL characters (\\u0000)"
                ) from None
            raise
        return seqs

    def delete(self, product_id: str) -> int:
        """Remove a product (its vector, image and template go with it); returns its seq.

        Raises:
            ProductNotFoundError: unknown id.
        """
        with self.write() as conn:
            row = conn.execute(
                f"DELETE FROM {S}.products WHERE product_id = %s RETURNING seq", (product_id,)
            ).fetchone()
            if row is None:
                raise ProductNotFoundError(f"no product {product_id!r} in the catalog")
            log_changes(conn, "delete", [row[0]])
        return int(row[0])

    def get(self, product_id: str) -> ProductRow:
        """The product with its image.

        Raises:
            ProductNotFoundError: unknown id.
        """
        row = self.row(f"{_WITH_IMAGE} WHERE p.product_id = %s", (product_id,))
        if row is None:
            raise ProductNotFoundError(f"no product {product_id!r} in the catalog")
        return _product_row(row)

    def page(self, after: str | None, limit: int) -> list[ProductRow]:
        """Up to ``limit`` products with ids greater than ``after``, by id."""
        rows = self.rows(
            f"{_WITH_IMAGE} WHERE p.product_id > %s ORDER BY p.product_id LIMIT %s",
            (after if after is not None else "", limit),
        )
        return [_product_row(r) for r in rows]

    def existing(self, product_ids: Iterable[str]) -> set[str]:
        """Which of ``product_ids`` are in the catalog."""
        ids = list(product_ids)
        if not ids:
            return set()
        rows = self.rows(
            f"SELECT product_id FROM {S}.products WHERE product_id = ANY(%s::text[])", (ids,)
        )
        return {r[0] for r in rows}

    def count(self) -> int:
        """Number of products."""
        row = self.row(f"SELECT COUNT(*) FROM {S}.products")
        return int(row[0]) if row else 0

    def product_ids(self, seqs: Iterable[int]) -> dict[int, str]:
        """``seq -> product_id`` for the seqs that still exist."""
        wanted = [int(s) for s in seqs]
        if not wanted:
            return {}
        rows = self.rows(
            f"SELECT seq, product_id FROM {S}.products WHERE seq = ANY(%s::bigint[])", (wanted,)
        )
        return {int(s): p for s, p in rows}

    def image_rows(
        self, seqs: np.ndarray | None = None, *, chunk: int = 256
    ) -> Iterator[list[ProductRow]]:
        """Products with their images in seq order, ``chunk`` at a time (all, or ``seqs``)."""
        if seqs is not None:
            wanted = [int(s) for s in np.sort(seqs)]
            for start in range(0, len(wanted), chunk):
                rows = self.rows(
                    f"{_WITH_IMAGE} WHERE p.seq = ANY(%s::bigint[]) ORDER BY p.seq",
                    (wanted[start : start + chunk],),
                )
                if rows:
                    yield [_product_row(r) for r in rows]
            return
        after = -1
        while True:
            rows = self.rows(
                f"{_WITH_IMAGE} WHERE p.seq > %s ORDER BY p.seq LIMIT %s", (after, chunk)
            )
            if not rows:
                return
            yield [_product_row(r) for r in rows]
            after = rows[-1][0]

    # -- template features ------------------------------------------------------------------

    def template(self, product_id: str) -> tuple[int, str | None, bytes | None]:
        """A product's seq and cached ``(key, features)`` (``None`` when not cached).

        Raises:
            ProductNotFoundError: unknown id.
        """
        row = self.row(
            f"SELECT p.seq, t.key, t.features FROM {S}.products p "
            f"LEFT JOIN {S}.templates t USING (seq) WHERE p.product_id = %s",
            (product_id,),
        )
        if row is None:
            raise ProductNotFoundError(f"no product {product_id!r} in the catalog")
        return int(row[0]), row[1], None if row[2] is None else bytes(row[2])

    def template_keys(self, product_ids: Iterable[str]) -> dict[str, tuple[int, str | None]]:
        """``product_id -> (seq, key of the cached features or None)`` for the ids that
        exist, without the features themselves."""
        ids = list(product_ids)
        if not ids:
            return {}
        rows = self.rows(
            f"SELECT p.product_id, p.seq, t.key FROM {S}.products p "
            f"LEFT JOIN {S}.templates t USING (seq) WHERE p.product_id = ANY(%s::text[])",
            (ids,),
        )
        return {pid: (int(seq), key) for pid, seq, key in rows}

    def template_blobs(self, seqs: Iterable[int], key: str) -> dict[int, bytes]:
        """``seq -> features`` of the seqs whose cached features have ``key``."""
        wanted = [int(s) for s in seqs]
        if not wanted:
            return {}
        rows = self.rows(
            f"SELECT seq, features FROM {S}.templates WHERE key = %s AND seq = ANY(%s::bigint[])",
            (key, wanted),
        )
        return {int(seq): bytes(data) for seq, data in rows}

    def set_template(self, seq: int, key: str, features: bytes) -> None:
        """Cache template features (ignored if the product was deleted meanwhile)."""
        try:
            with self.errors("write"), self.pool.connection() as conn:
                conn.execute(
                    f"INSERT INTO {S}.templates(seq, key, features) SELECT %s, %s, %s "
                    f"WHERE EXISTS (SELECT 1 FROM {S}.products WHERE seq = %s) "
                    "ON CONFLICT (seq) DO UPDATE SET key = excluded.key, "
                    "features = excluded.features",
                    (seq, key, features, seq),
                )
        except psycopg.errors.ForeignKeyViolation:
            pass  # deleted between the check and the insert: nothing to cache


# -- helpers -------------------------------------------------------------------------------


def _product_row(row: tuple) -> ProductRow:
    seq, pid, metadata, box, created_at, height, width, png, uri = row
    image = bytes(png) if png is not None else read_image(uri)
    return ProductRow(int(seq), pid, metadata, box, float(created_at), height, width, image)


def _insert_products(
    conn: psycopg.Connection, items: list[NewProduct], uris: list[str] | None
) -> list[int]:
    seqs: list[int] = []
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {S}.products(product_id, metadata, box, created_at, height, width) "
            "VALUES (%s, %s::jsonb, %s::jsonb, %s, %s, %s) RETURNING seq",
            [(i.product_id, i.metadata, i.box, i.created_at, i.height, i.width) for i in items],
            returning=True,
        )
        while True:
            seqs.append(int(cur.fetchone()[0]))
            if not cur.nextset():
                break
        cur.executemany(
            f"INSERT INTO {S}.vectors(seq, vector) VALUES (%s, %s)",
            [
                (s, np.ascontiguousarray(i.vector, dtype=np.float32).tobytes())
                for s, i in zip(seqs, items, strict=True)
            ],
        )
        cur.executemany(
            f"INSERT INTO {S}.images(seq, png, uri) VALUES (%s, %s, %s)",
            [
                (s, None, uris[n]) if uris else (s, i.png, None)
                for n, (s, i) in enumerate(zip(seqs, items, strict=True))
            ],
        )
        templates = [(s, *i.template) for s, i in zip(seqs, items, strict=True) if i.template]
        if templates:
            cur.executemany(
                f"INSERT INTO {S}.templates(seq, key, features) VALUES (%s, %s, %s)", templates
            )
    return seqs


def _put(conn: psycopg.Connection, values: dict[str, str], blobs: dict[str, bytes]) -> None:
    with conn.cursor() as cur:
        if values:
            cur.executemany(
                f"INSERT INTO {S}.meta(key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                sorted(values.items()),
            )
        if blobs:
            cur.executemany(
                f"INSERT INTO {S}.blobs(name, data) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET data = excluded.data",
                sorted(blobs.items()),
            )
