"""The PostgreSQL catalog's schema and its versioned migrations.

The catalog's tables live in the ``siammatch`` schema; ``siammatch.schema_version`` lists
the migrations applied. :func:`prepare_schema` runs when a catalog is opened: it applies
the migrations this version knows and the database lacks, in order, each in its own
transaction under an advisory lock (so services started together migrate once), refuses a
database migrated by a newer siammatch, and checks that the role may read and write every
table — each problem one :class:`~matcher.errors.CatalogError` before anything is served.

The tables mirror the embedded SQLite store (:mod:`index.store`): ``meta``, ``blobs``,
``products`` (metadata and box as JSONB), ``vectors``, ``images`` (PNG bytes, or a URI),
``templates`` and the append-only ``changes`` log, whose entries carry the time they were
written so a replica can say how far behind it is.
"""

from __future__ import annotations

import logging

import psycopg

from index.pg_db import MIGRATION_LOCK, SCHEMA, PostgresDatabase, first_line
from matcher.errors import CatalogError

logger = logging.getLogger(__name__)

S = SCHEMA
#: ``(version, description, SQL)``, oldest first; a new schema version is a new entry.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "catalog tables",
        f"""
CREATE TABLE {S}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE {S}.blobs (name TEXT PRIMARY KEY, data BYTEA NOT NULL);
CREATE TABLE {S}.products (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id TEXT COLLATE "C" NOT NULL UNIQUE,
    metadata JSONB NOT NULL,
    box JSONB,
    created_at DOUBLE PRECISION NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL
);
CREATE TABLE {S}.vectors (
    seq BIGINT PRIMARY KEY REFERENCES {S}.products ON DELETE CASCADE,
    vector BYTEA NOT NULL
);
CREATE TABLE {S}.images (
    seq BIGINT PRIMARY KEY REFERENCES {S}.products ON DELETE CASCADE,
    png BYTEA,
    uri TEXT,
    CHECK (png IS NOT NULL OR uri IS NOT NULL)
);
CREATE TABLE {S}.templates (
    seq BIGINT PRIMARY KEY REFERENCES {S}.products ON DELETE CASCADE,
    key TEXT NOT NULL,
    features BYTEA NOT NULL
);
CREATE TABLE {S}.changes (
    change_seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    op TEXT NOT NULL CHECK (op IN ('add', 'delete', 'reindex')),
    seq BIGINT,
    at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
""",
    ),
)
#: The newest schema version this siammatch knows.
SCHEMA_VERSION = MIGRATIONS[-1][0]
#: The tables a service reads and writes.
TABLES = ("meta", "blobs", "products", "vectors", "images", "templates", "changes")


def schema_version(db: PostgresDatabase) -> int:
    """The newest migration applied (0 for a database without the catalog's schema)."""
    exists = db.row("SELECT to_regclass(%s)", (f"{S}.schema_version",))
    if exists is None or exists[0] is None:
        return 0
    row = db.row(f"SELECT COALESCE(MAX(version), 0) FROM {S}.schema_version")
    return int(row[0]) if row else 0


def prepare_schema(db: PostgresDatabase, *, create: bool = True) -> None:
    """Migrate the database to :data:`SCHEMA_VERSION` and check the role's privileges.

    Args:
        db: the database.
        create: create the schema in a database that has none (else refuse, writing
            nothing).

    Raises:
        CatalogError: no catalog schema (and not ``create``), a schema from a newer
            siammatch, a migration the role may not run, or a table the role may not read
            or write.
    """
    try:
        version = schema_version(db)
    except CatalogError as exc:
        if isinstance(exc.__cause__, psycopg.errors.InsufficientPrivilege):
            _refuse_role(db, f"may not read {S}.schema_version ({first_line(exc.__cause__)})")
        raise
    if version == 0 and not create:
        raise CatalogError(f"no catalog at {db.location!r}")
    if version > SCHEMA_VERSION:
        raise CatalogError(
            f"catalog database {db.location} has schema version {version}, newer than the "
            f"{SCHEMA_VERSION} this siammatch knows; upgrade siammatch"
        )
    if version < SCHEMA_VERSION:
        _migrate(db)
    _check_privileges(db)


def _migrate(db: PostgresDatabase) -> None:
    try:
        with db.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", MIGRATION_LOCK)
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {S}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {S}.schema_version (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            row = conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {S}.schema_version")
            current = int(row.fetchone()[0])
            for version, description, sql in MIGRATIONS:
                if version <= current:
                    continue
                logger.info(
                    "catalog database %s: migration %d (%s)", db.location, version, description
                )
                conn.execute(sql)
                conn.execute(
                    f"INSERT INTO {S}.schema_version(version, description) VALUES (%s, %s)",
                    (version, description),
                )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise CatalogError(
            f"catalog database {db.location}: the role may not create the catalog's schema "
            f"({first_line(exc)}); let an owner of the database open it once, "
            "or grant the role CREATE on the database"
        ) from None
    except psycopg.Error as exc:
        raise CatalogError(
            f"catalog database {db.location}: migration failed: {first_line(exc)}"
        ) from exc


def _check_privileges(db: PostgresDatabase) -> None:
    checks = " AND ".join(
        f"has_table_privilege(q, '{p}')" for p in ("SELECT", "INSERT", "UPDATE", "DELETE")
    )
    rows = db.rows(
        f"SELECT t, has_schema_privilege(%s, 'USAGE') AND {checks} "
        "FROM (SELECT t, format('%%I.%%I', %s::text, t) AS q FROM unnest(%s::text[]) AS t) s",
        (S, S, list(TABLES)),
    )
    missing = [t for t, ok in rows if not ok]
    if missing:
        _refuse_role(db, f"may not read and write {', '.join(f'{S}.{t}' for t in missing)}")


def _refuse_role(db: PostgresDatabase, problem: str) -> None:
    user = db.row("SELECT current_user")
    raise CatalogError(
        f"catalog database {db.location}: role {user[0] if user else '?'!r} {problem}; grant "
        f"it USAGE on schema {S} and SELECT, INSERT, UPDATE and DELETE on its tables"
    )
