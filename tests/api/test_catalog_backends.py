"""The service on a PostgreSQL catalog: what ``/readyz`` says about a database catalog (and
what it keeps to itself), and ``siammatch serve --catalog <URL>``: the database prepared
once before gunicorn starts, and one line with exit status 2, gunicorn never started, for a
location it cannot serve (another URL scheme, no server, no such database, a role without
the privileges, a schema of a newer siammatch).

The tests every backend shares (routes, search, metrics, the real server) are in the other
modules, parametrised over ``backend``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

import api.cli
from index.catalog import Catalog
from index.pg_schema import SCHEMA_VERSION
from tests.api.http_helpers import upload
from tests.pg_cluster import PgCluster, database_name

#: Runs a test on the PostgreSQL backend only: its ``catalog_location`` is a new database.
on_postgresql = pytest.mark.parametrize("backend", ["postgresql"])

#: A password in the catalog URL (the test cluster trusts local logins and ignores it).
PASSWORD = "Pa55-w0rd-never-shown"
#: Options of every ``serve`` here: template matching (no weights to load), a fixed port.
SERVE = ["serve", "--recipe", "siamfc_pixels", "--port", "8139"]


def _with_password(cluster: PgCluster, url: str) -> str:
    """``url`` with the superuser's name and :data:`PASSWORD` in it."""
    name = database_name(url)
    return f"postgresql://{cluster.superuser}:{PASSWORD}@/{name}?host={cluster.socket_dir}"


def _rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _schema_state(url: str) -> tuple[list[tuple], list[tuple]]:
    """The catalog schema's tables and its migrations, as the superuser sees them."""
    tables = _rows(
        url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'siammatch'"
    )
    if not tables:
        return [], []
    return sorted(tables), _rows(url, "SELECT version FROM siammatch.schema_version")


# -- /readyz -------------------------------------------------------------------------------


@on_postgresql
def test_readyz_reports_the_database_and_its_replication_without_secrets(
    make_app, pg_cluster, catalog_location, tmp_path, pictures
):
    client = make_app(
        catalog=True, CATALOG_DIR=_with_password(pg_cluster, catalog_location)
    ).test_client()
    added = client.post("/v1/catalog", data={"id": "coffee", "image": upload(pictures.product_png)})
    assert added.status_code == 201, added.get_json()
    response = client.get("/readyz")
    assert response.status_code == 200
    catalog = response.get_json()["catalog"]
    assert catalog["backend"] == "postgresql"
    assert catalog["products"] == catalog["index"]["vectors"] == 1
    ((last_change,),) = _rows(catalog_location, "SELECT MAX(change_seq) FROM siammatch.changes")
    assert catalog["replication"] == {
        "changes_behind": 0,
        "lag_seconds": 0.0,
        "applied_change": last_change,
        "follower": True,
    }
    assert not {"path", "bytes", "index_cache"} & set(catalog)
    text = response.get_data(as_text=True)
    for secret in (
        PASSWORD,
        "postgresql:",
        database_name(catalog_location),
        str(pg_cluster.socket_dir),
        str(tmp_path),  # the FAISS cache folder is in it
    ):
        assert secret not in text, secret


# -- siammatch serve --catalog <URL> -------------------------------------------------------


@on_postgresql
def test_serve_prepares_an_empty_database_catalog_once(
    serve_cli, pg_cluster, catalog_location, tmp_path, capsys
):
    url = _with_password(pg_cluster, catalog_location)
    cache = tmp_path / "cache"
    argv = [*SERVE, "--catalog", url, "--index-cache", str(cache), "--seed-products", "4"]
    assert api.cli.main(argv) == 0
    ((command, env),) = serve_cli
    assert command[-1] == "api.app:create_app()"
    assert env["SIAMMATCH_CATALOG"] == url  # the workers need the password
    assert env["SIAMMATCH_INDEX_CACHE"] == str(cache)
    err = capsys.readouterr().err
    assert PASSWORD not in err
    assert f"postgresql://{pg_cluster.superuser}:***@/" in err
    assert "ready (0 products)" in err  # a database is not seeded
    assert "created catalog" not in err
    assert _rows(catalog_location, "SELECT version FROM siammatch.schema_version") == [
        (SCHEMA_VERSION,)
    ]
    with Catalog(catalog_location, create=False, index_cache=tmp_path / "other") as catalog:
        assert len(catalog) == 0
        uuid = catalog.uuid
    assert [p.name for p in cache.iterdir()] == [uuid]  # this machine's FAISS cache
    # A second start opens the same catalog.
    assert api.cli.main(argv) == 0
    assert "ready (0 products)" in capsys.readouterr().err
    with Catalog(catalog_location, create=False, index_cache=tmp_path / "other") as catalog:
        assert catalog.uuid == uuid


def _clerk_role(url: str) -> str:
    """The clerk role of ``url``'s database (roles are the cluster's: one per database)."""
    return f"clerk_{database_name(url)}"


def _clerk(cluster: PgCluster, url: str) -> str:
    """A new role that may log in and nothing more; ``url``'s database as that role."""
    name = database_name(url)
    cluster.execute(f'CREATE ROLE "{_clerk_role(url)}" LOGIN')
    cluster.execute(f'REVOKE CREATE ON DATABASE "{name}" FROM PUBLIC')
    return cluster.url(name, user=_clerk_role(url))


def _migrated(url: str, tmp_path: Path) -> None:
    """The database's owner opens the catalog once (migrating it)."""
    Catalog(url, index_cache=tmp_path / "owner", follow=False).close()


def _no_schema_usage(cluster: PgCluster, url: str, tmp_path: Path) -> str:
    _migrated(url, tmp_path)
    return _clerk(cluster, url)


def _no_table_privileges(cluster: PgCluster, url: str, tmp_path: Path) -> str:
    _migrated(url, tmp_path)
    clerk = _clerk(cluster, url)
    cluster.execute(f'GRANT USAGE ON SCHEMA siammatch TO "{_clerk_role(url)}"', database_name(url))
    return clerk


def _read_only(cluster: PgCluster, url: str, tmp_path: Path) -> str:
    _migrated(url, tmp_path)
    clerk = _clerk(cluster, url)
    role = _clerk_role(url)
    cluster.execute(f'GRANT USAGE ON SCHEMA siammatch TO "{role}"', database_name(url))
    cluster.execute(
        f'GRANT SELECT ON ALL TABLES IN SCHEMA siammatch TO "{role}"', database_name(url)
    )
    return clerk


def _newer_schema(cluster: PgCluster, url: str, tmp_path: Path) -> str:
    _migrated(url, tmp_path)
    cluster.execute(
        "INSERT INTO siammatch.schema_version (version, description) VALUES (999, 'future')",
        database_name(url),
    )
    return url


#: ``(case, location(cluster, database URL, tmp_path), words of the error)``.
BAD_CATALOGS: list[tuple[str, Callable[[PgCluster, str, Path], str], str]] = [
    (
        "another-scheme",
        lambda cluster, url, tmp: f"mysql://shop:{PASSWORD}@db.example/catalog",
        "'mysql://shop:***@db.example/catalog' is a mysql: URL; a catalog is a folder or a "
        "postgresql:// database URL",
    ),
    (
        "no-server",
        lambda cluster, url, tmp: f"postgresql:///catalog?host={tmp / 'no-server'}",
        "cannot connect",
    ),
    (
        "no-such-database",
        lambda cluster, url, tmp: cluster.url("no_such_catalog"),
        'database "no_such_catalog" does not exist',
    ),
    (
        "role-may-not-create-the-schema",
        lambda cluster, url, tmp: _clerk(cluster, url),
        "may not create the catalog's schema",
    ),
    ("role-without-schema-usage", _no_schema_usage, "permission denied for schema siammatch"),
    (
        "role-without-table-privileges",
        _no_table_privileges,
        "permission denied for table schema_version",
    ),
    ("role-may-only-read", _read_only, "may not read and write siammatch.meta"),
    ("newer-schema", _newer_schema, "has schema version 999, newer than the 1 this siammatch"),
]


@on_postgresql
@pytest.mark.parametrize(
    "location, words", [case[1:] for case in BAD_CATALOGS], ids=[c[0] for c in BAD_CATALOGS]
)
def test_serve_refuses_a_catalog_it_cannot_use_with_one_line(
    serve_cli, pg_cluster, catalog_location, tmp_path, capsys, location, words
):
    given = location(pg_cluster, catalog_location, tmp_path)
    before = _schema_state(catalog_location)
    cache = tmp_path / "cache"
    assert api.cli.main([*SERVE, "--catalog", given, "--index-cache", str(cache)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("siammatch: error: --catalog: "), err
    assert words in err[0]
    assert PASSWORD not in err[0]
    assert serve_cli == []  # gunicorn never started
    assert not cache.exists()
    assert _schema_state(catalog_location) == before  # nothing migrated or written
