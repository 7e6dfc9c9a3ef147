"""PostgreSQL connections for a catalog: a pool, explicit transactions, clear errors.

:class:`PostgresDatabase` checks the server once with a direct connection (so an
unreachable server, a wrong database or a refused login is one clear
:class:`~matcher.errors.CatalogError` naming the URL without its password), then serves
every query from a psycopg connection pool (connections checked before use, so a restarted
server costs no request). Writes are transactions that first take the catalog's write lock
(a transaction-scoped advisory lock): writers are serialised as SQLite serialises them, so
the change log's ``change_seq`` values become visible in order and a follower that reads
"everything after N" never skips an entry that commits late. Reads that must agree with
each other run in one ``REPEATABLE READ`` snapshot. :class:`~index.pg_store.PostgresStore`
adds the catalog's schema and queries.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import psycopg_pool

from index.location import redact_url
from matcher.errors import CatalogError

logger = logging.getLogger(__name__)

#: The schema that holds the catalog's tables (a shop's database has tables of its own).
SCHEMA = "siammatch"
#: The notification channel a write announces itself on.
CHANNEL = "siammatch_changes"
#: ``pg_advisory_xact_lock`` keys of the catalog's writers and of schema migration.
WRITE_LOCK = (0x53494D, 1)
MIGRATION_LOCK = (0x53494D, 2)
#: Seconds to wait for the server when connecting.
CONNECT_TIMEOUT = 10
#: Connections per process.
POOL_SIZE = 8


class PostgresDatabase:
    """Pooled access to one PostgreSQL database.

    Args:
        url: a libpq connection URL (``postgresql://user@host:port/db``, or
            ``postgresql:///db?host=/run/postgresql`` for a Unix socket).
        pool_size: most connections this process opens.

    Raises:
        CatalogError: the server cannot be reached or refuses the login.
    """

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.location = redact_url(url)
        self._check_server()
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            check=psycopg_pool.ConnectionPool.check_connection,
            name="siammatch-catalog",
        )
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except psycopg_pool.PoolTimeout as exc:
            self.pool.close()
            raise CatalogError(
                f"catalog database {self.location}: cannot connect ({exc})"
            ) from None

    def _check_server(self) -> None:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise CatalogError(
                f"catalog database {self.location}: cannot connect: {first_line(exc)}"
            ) from None
        conn.close()

    def listener(self) -> psycopg.Connection:
        """A new connection (outside the pool) listening on :data:`CHANNEL`."""
        with self.errors("listen"):
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
            conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def close(self) -> None:
        """Close every pooled connection."""
        self.pool.close()

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn the psycopg errors raised inside, except integrity errors, into a
        :class:`CatalogError` saying that ``what`` failed."""
        try:
            yield
        except psycopg.IntegrityError:
            raise
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            raise CatalogError(
                f"catalog database {self.location}: {what} failed: {first_line(exc)}"
            ) from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[psycopg.Connection]:
        """A write transaction holding the catalog's write lock (rolled back on error)."""
        with self.errors("write"), self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", WRITE_LOCK)
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[psycopg.Connection]:
        """A read-only transaction: every statement inside sees one snapshot."""
        with self.errors("read"), self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """The rows of one read statement."""
        with self.errors("read"), self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        """The first row of one read statement, or ``None``."""
        with self.errors("read"), self.pool.connection() as conn:
            return conn.execute(sql, params).fetchone()


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (psycopg's run over several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
