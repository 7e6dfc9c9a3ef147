"""What only the PostgreSQL catalog does: schema migrations, start-up refusals, replicas
following the change log, background training, lag, and copying a folder catalog in.

The shared catalog behaviour runs on both backends in the other files of this package
(the ``catalog_location`` fixture); the server is the throwaway cluster of
:mod:`tests.pg_cluster`.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import pytest

from api.cli import main as cli_main
from index.catalog import Catalog
from index.migrate import copy_catalog
from index.pg_schema import SCHEMA_VERSION
from matcher.errors import CatalogError
from tests.index.conftest import assert_consistent, block_image
from tests.pg_cluster import database_name


@pytest.fixture
def url(pg_cluster, request):
    made = pg_cluster.new_database("pgtest")
    request.addfinalizer(lambda: pg_cluster.drop_database(made))
    return made


def open_at(url, tmp_path, name, **kwargs) -> Catalog:
    """A catalog on ``url`` with the FAISS cache of "machine" ``name``."""
    return Catalog(url, index_cache=tmp_path / name, **kwargs)


def rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def wait_until(predicate, timeout: float) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start


# -- schema --------------------------------------------------------------------------------


def test_migrations_run_once_and_a_newer_schema_is_refused(url, tmp_path):
    errors = []

    def opener(i):
        try:
            open_at(url, tmp_path, f"m{i}", follow=False).close()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=opener, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert rows(url, "SELECT version FROM siammatch.schema_version") == [(SCHEMA_VERSION,)]
    assert len(rows(url, "SELECT value FROM siammatch.meta WHERE key = 'uuid'")) == 1
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO siammatch.schema_version VALUES (999, 'future', now())")
    with pytest.raises(CatalogError, match="schema version 999, newer than"):
        open_at(url, tmp_path, "new")


def test_start_up_refusals(pg_cluster, url, tmp_path):
    with pytest.raises(CatalogError, match="no catalog at"):
        Catalog(url, create=False, index_cache=tmp_path)
    assert rows(url, "SELECT to_regclass('siammatch.schema_version')") == [(None,)]  # untouched
    with pytest.raises(CatalogError, match="cannot connect"):
        Catalog(f"postgresql:///x?host={tmp_path}/nowhere", index_cache=tmp_path)
    with pytest.raises(CatalogError, match='database "no_such_db" does not exist'):
        Catalog(pg_cluster.url("no_such_db"), index_cache=tmp_path)
    secret = "postgresql://someone:hunter2@127.0.0.1:1/db"
    with pytest.raises(CatalogError) as caught:
        Catalog(secret, index_cache=tmp_path)
    assert "hunter2" not in str(caught.value) and "someone:***@" in str(caught.value)
    with pytest.raises(CatalogError, match="is a mysql: URL"):
        Catalog("mysql://user@host/db")
    # a role that may not create the schema, then one that may not touch its tables
    name = database_name(url)
    pg_cluster.execute(
        "DO $$ BEGIN CREATE ROLE clerk LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    pg_cluster.execute(f'REVOKE CREATE ON DATABASE "{name}" FROM PUBLIC')
    clerk = pg_cluster.url(name, user="clerk")
    with pytest.raises(CatalogError, match="may not create the catalog's schema"):
        Catalog(clerk, index_cache=tmp_path)
    open_at(url, tmp_path, "owner", follow=False).close()  # the owner migrates
    pg_cluster.execute("GRANT USAGE ON SCHEMA siammatch TO clerk", database=name)
    pg_cluster.execute("GRANT SELECT ON ALL TABLES IN SCHEMA siammatch TO clerk", database=name)
    with pytest.raises(CatalogError, match=r"may not read and write siammatch\.meta"):
        Catalog(clerk, index_cache=tmp_path)
    pg_cluster.execute(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA siammatch TO clerk",
        database=name,
    )
    with Catalog(clerk, index_cache=tmp_path / "clerk", follow=False) as cat:
        cat.add("by-clerk", block_image("by-clerk"))
        assert "by-clerk" in cat


# -- replicas ------------------------------------------------------------------------------


def test_a_replica_follows_without_being_asked(url, tmp_path):
    writer = open_at(url, tmp_path, "writer", follow=False)
    replica = open_at(url, tmp_path, "replica")  # follows: a database catalog's default
    try:
        assert replica.replication()["follower"]
        writer.add("a", block_image("a"))
        last = rows(url, "SELECT MAX(change_seq) FROM siammatch.changes")[0][0]
        # no search, no sync on the replica: its follower thread applies the add
        waited = wait_until(lambda: replica._index.applied == last, timeout=1.0)
        assert waited < 1.0
        assert replica.replication()["changes_behind"] == 0
        writer.delete("a")
        writer.add_many([(f"b{i}", block_image(f"b{i}"), None, None) for i in range(5)])
        wait_until(lambda: replica.replication()["changes_behind"] == 0, timeout=1.0)
        assert_consistent(replica, {f"b{i}" for i in range(5)})
    finally:
        writer.close()
        replica.close()


def test_lag_counts_unapplied_changes_and_their_age(url, tmp_path):
    with (
        open_at(url, tmp_path, "w", follow=False) as writer,
        open_at(url, tmp_path, "r", follow=False) as reader,
    ):
        assert reader.replication()["changes_behind"] == 0
        writer.add("x", block_image("x"))
        writer.add("y", block_image("y"))
        time.sleep(0.2)
        lag = reader.replication()
        assert lag["changes_behind"] == 2 and not lag["follower"]
        assert 0.2 <= lag["lag_seconds"] < 30
        assert [h.product_id for h in reader.search(block_image("y"), k=1)] == ["y"]
        assert reader.replication() | {"follower": False} == {
            "changes_behind": 0,
            "lag_seconds": 0.0,
            "applied_change": lag["applied_change"] + 2,
            "follower": False,
        }


def test_training_runs_in_the_follower_not_in_requests(url, tmp_path, caplog):
    vectors = 48
    writer = open_at(url, tmp_path, "w", factory="IVF4,Flat", min_train_size=40, follow=False)
    replica = open_at(url, tmp_path, "r", min_train_size=40)
    try:
        with caplog.at_level(logging.INFO, logger="index.synced_index"):
            items = [(f"t{i}", block_image(f"t{i}", size=48), None, None) for i in range(vectors)]
            writer.add_many(items, chunk_size=16)
            wait_until(lambda: replica.info()["index"]["state"] == "ready", timeout=30)
        background = [r for r in caplog.records if "in the background" in r.getMessage()]
        assert background and all(r.threadName == "siammatch-follower" for r in background)
        assert replica.info()["index"]["vectors"] == vectors
        hits = replica.search(block_image("t7", size=48), k=1)
        assert [h.product_id for h in hits] == ["t7"]
    finally:
        writer.close()
        replica.close()


def test_explicit_training_reaches_machines_with_their_own_cache(url, tmp_path):
    a = open_at(url, tmp_path, "a", factory="IVF4,Flat", follow=False)
    b = open_at(url, tmp_path, "b")
    try:
        a.add_many([(f"f{i}", block_image(f"f{i}", size=32), None, None) for i in range(30)])
        wait_until(lambda: b.replication()["changes_behind"] == 0, timeout=5)
        assert b.info()["index"]["state"] == "exact (untrained)"  # 30 < the threshold
        a.train()
        assert a.info()["index"]["state"] == "ready"
        # b cannot load a's file (another disk): its follower trains its own index
        wait_until(lambda: b.info()["index"]["state"] == "ready", timeout=30)
        assert b.search(block_image("f3", size=32), k=1)[0].product_id == "f3"
        a.rebuild("Flat")  # an explicit rebuild clears the forced training
        assert dict(rows(url, "SELECT key, value FROM siammatch.meta"))["forced_training"] == "0"
    finally:
        a.close()
        b.close()


def test_concurrent_writers_lose_no_change(url, tmp_path):
    writers = [open_at(url, tmp_path, f"w{i}", follow=False) for i in range(2)]
    replica = open_at(url, tmp_path, "r")

    def write(k):
        for i in range(12):
            writers[k % 2].add(f"c{k}-{i}", block_image(f"c{k}-{i}", size=32))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        wait_until(lambda: replica.replication()["changes_behind"] == 0, timeout=5)
        assert_consistent(replica, {f"c{k}-{i}" for k in range(4) for i in range(12)})
        seqs = [r[0] for r in rows(url, "SELECT change_seq FROM siammatch.changes ORDER BY 1")]
        assert len(seqs) == 48 and seqs == sorted(set(seqs))
    finally:
        for cat in [*writers, replica]:
            cat.close()


# -- copying a folder catalog in -------------------------------------------------------------


def test_migrate_copies_a_folder_catalog(url, tmp_path, capsys):
    folder = tmp_path / "folder"
    with Catalog(folder) as source:
        for i in range(7):
            source.add(f"s{i}", block_image(f"s{i}"), metadata={"i": i, "name": f"é{i}"})
        source.add("boxed", block_image("boxed", size=120), box=(10, 20, 90, 100))
        source.delete("s3")
        expected = {p.product_id: p for p in source.list(limit=100)[0]}
        source_uuid = source.uuid
        source_vectors = _vectors_by_id(source)
    assert cli_main(["catalog", "migrate", "--from", str(folder), "--to", url]) == 0
    assert "copied 7 products" in capsys.readouterr().out
    with open_at(url, tmp_path, "copy", follow=False) as copy:
        assert copy.uuid != source_uuid
        got = {p.product_id: p for p in copy.list(limit=100)[0]}
        assert got.keys() == expected.keys()
        for pid, product in expected.items():
            assert got[pid].metadata == product.metadata
            assert got[pid].box == product.box
            assert got[pid].image_png == product.image_png
        assert _vectors_by_id(copy) == source_vectors  # byte for byte, nothing re-embedded
        assert copy.search(block_image("s5"), k=1)[0].product_id == "s5"
    meta = dict(rows(url, "SELECT key, value FROM siammatch.meta"))
    assert meta["migrated_from"] == source_uuid and meta["migration"] == "complete"
    assert cli_main(["catalog", "migrate", "--from", str(folder), "--to", url]) == 2
    assert "already holds a catalog" in capsys.readouterr().err


def test_an_interrupted_migration_refuses_to_open_and_resumes(pg_cluster, tmp_path, monkeypatch):
    import index.pg_store

    folder = tmp_path / "folder"
    with Catalog(folder) as source:
        source.add_many([(f"p{i}", block_image(f"p{i}"), None, None) for i in range(10)])
    target = pg_cluster.new_database("resume")
    real_insert = index.pg_store.PostgresStore.insert
    calls = []

    def failing_insert(self, items, *, embedder):
        calls.append(len(items))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the operator's Ctrl-C in the second chunk
        return real_insert(self, items, embedder=embedder)

    monkeypatch.setattr(index.pg_store.PostgresStore, "insert", failing_insert)
    with pytest.raises(KeyboardInterrupt):
        copy_catalog(folder, target, chunk=4)
    monkeypatch.setattr(index.pg_store.PostgresStore, "insert", real_insert)
    assert len(rows(target, "SELECT 1 FROM siammatch.products")) == 4
    with pytest.raises(CatalogError, match="unfinished copy"):
        open_at(target, tmp_path, "early")
    report = copy_catalog(folder, target, chunk=4)
    assert (report.products, report.copied) == (10, 6)
    with open_at(target, tmp_path, "done", follow=False) as copy:
        assert_consistent(copy, {f"p{i}" for i in range(10)})
    pg_cluster.drop_database(target)


def _vectors_by_id(cat: Catalog) -> dict[str, bytes]:
    """Every stored vector's bytes, by product id."""
    out = {}
    for ids, xb in cat._store.stored_vectors(None, dim=cat.dim):
        names = cat._store.product_ids(ids)
        out.update((names[int(s)], v.tobytes()) for s, v in zip(ids, xb, strict=True))
    return out


def test_reference_images_in_an_image_store(url, tmp_path):
    store = (tmp_path / "bucket").as_uri()
    image = block_image("pic")
    with open_at(url, tmp_path, "w", follow=False, image_store=store) as cat:
        added = cat.add("pic", image, metadata={"n": 1})
        cat.add("twin", image)  # the same photo: one file
    (png, uri), (png2, uri2) = rows(url, "SELECT png, uri FROM siammatch.images ORDER BY seq")
    assert png is None and png2 is None and uri == uri2 and uri.startswith(store)
    files = list((tmp_path / "bucket").rglob("*.png"))
    assert len(files) == 1 and files[0].read_bytes() == added.image_png
    with open_at(url, tmp_path, "r", follow=False) as reader:  # readers need no setting
        assert reader.get("pic").image_png == added.image_png
        assert reader.search(image, k=1)[0].product_id in {"pic", "twin"}
    with pytest.raises(CatalogError, match="is not a file:// URL"):
        open_at(url, tmp_path, "s3", image_store="s3://bucket/images")
