"""The catalog's stores compared: the embedded SQLite folder and PostgreSQL with replicas.

Run as ``python benchmarks/catalog.py --stores`` (or this file directly). Fixed workload:
``--n`` (default 100,000) products with clustered unit vectors of ``--d`` (256) dimensions
(:func:`benchmarks.catalog.clustered`, seed 0) and a 16x16 PNG each, written through the
store interface in transactions of ``--chunk`` (256) products — the database path of an
import, without the embedding, which costs the same on both stores. PostgreSQL 15 runs in
a throwaway cluster on a Unix socket with its default durability (``fsync`` on, like the
SQLite store's ``synchronous=FULL``).

Figures:

* **import**: products per second into each store;
* **replica catch-up**: a replica opened before the import (its saved index at change 0)
  applies the 100k ``add`` entries from the change log; also the cold start of a replica
  with no local cache (index built from the stored vectors) and the restart of one whose
  local snapshot is current;
* **search**: single-query ``search_vectors`` (k = 10, Flat index, one OpenMP thread as in a
  multi-worker server; each call syncs with its store first, as a service request does) on
  the embedded catalog and on a PostgreSQL replica, ``--queries`` queries each,
  interleaved in rounds so both see the same machine load; QPS and the replica/embedded
  ratio.

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))


def tiny_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def fill(store, xb: np.ndarray, *, chunk: int, progress: str) -> float:
    """Insert one product per row of ``xb``; returns seconds."""
    from tqdm import tqdm

    from index.product_rows import NewProduct

    png = tiny_png()
    fingerprint = store.meta()["embedder_fingerprint"]
    start = time.perf_counter()
    for lo in tqdm(range(0, len(xb), chunk), desc=progress, unit="txn", leave=False):
        items = [
            NewProduct(
                product_id=f"p{i:07d}",
                metadata='{"bench": true}',
                box=None,
                created_at=time.time(),
                height=16,
                width=16,
                png=png,
                vector=xb[i],
            )
            for i in range(lo, min(lo + chunk, len(xb)))
        ]
        store.insert(items, embedder=fingerprint)
    return time.perf_counter() - start


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="products")
    parser.add_argument("--d", type=int, default=256, help="vector dimensions")
    parser.add_argument("--chunk", type=int, default=256, help="products per transaction")
    parser.add_argument("--queries", type=int, default=400, help="queries per store")
    args = parser.parse_args(argv)

    import faiss

    from benchmarks.catalog import clustered
    from index.backend import open_store
    from index.catalog import Catalog
    from matcher.embedder import EmbedderSpec, build_embedder
    from tests.pg_cluster import PgCluster

    faiss.omp_set_num_threads(1)
    embedder = build_embedder(EmbedderSpec(dim=args.d))
    xb = clustered(args.n, args.d, seed=0)
    xq = clustered(args.queries, args.d, seed=1)
    work = Path(tempfile.mkdtemp(prefix="siammatch-bench-"))
    cluster = PgCluster(fsync=True)
    rows: list[tuple[str, str]] = []
    try:
        url = cluster.new_database("bench")
        folder = work / "embedded"
        for location in (str(folder), url):  # create both catalogs (settings, embedder)
            Catalog(location, embedder=embedder, index_cache=work / "init", follow=False).close()
        early = Catalog(url, index_cache=work / "early", follow=False)  # replica at change 0
        early.close()

        sqlite_store = open_store(folder, create=False, image_store=None)
        sqlite_s = fill(sqlite_store, xb, chunk=args.chunk, progress="sqlite import")
        sqlite_store.close()
        pg_store = open_store(url, create=False, image_store=None)
        pg_s = fill(pg_store, xb, chunk=args.chunk, progress="postgresql import")
        pg_store.close()
        rows.append(("import, embedded SQLite (products/s)", f"{args.n / sqlite_s:,.0f}"))
        rows.append(("import, PostgreSQL (products/s)", f"{args.n / pg_s:,.0f}"))

        def reopen(cache: str):
            return Catalog(url, index_cache=work / cache, follow=False)

        catch_s, replica = timed(lambda: reopen("early"))  # loads its snapshot, applies the log
        assert len(replica) == args.n and replica.verify()["consistent"]
        replica.close()
        rows.append((f"replica catch-up, {args.n:,} changes from the log (s)", f"{catch_s:.1f}"))
        cold_s, replica = timed(lambda: reopen("cold"))
        replica.close()
        rows.append(("replica cold start, no local cache (s)", f"{cold_s:.1f}"))
        warm_s, replica = timed(lambda: reopen("cold"))
        replica.close()
        rows.append(("replica restart on a current snapshot (s)", f"{warm_s:.2f}"))
        # as a service runs it: a follower listens, searches read the local index
        replica = Catalog(url, index_cache=work / "cold", follow=True)

        embedded = Catalog(folder, follow=False)  # a folder syncs before each search
        qps = _interleaved({"embedded": embedded, "replica": replica}, xq)
        embedded.close()
        replica.close()
        name = "search QPS, embedded SQLite (k=10, Flat, 1 thread)"
        rows.append((name, f"{qps['embedded']:.1f}"))
        rows.append(("search QPS, PostgreSQL replica with its follower", f"{qps['replica']:.1f}"))
        rows.append(("replica / embedded search QPS", f"{qps['replica'] / qps['embedded']:.3f}"))
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"n={args.n:,} d={args.d} chunk={args.chunk} queries={args.queries}; "
        f"PostgreSQL {cluster.bin.parent.name} (fsync on, Unix socket)"
    )
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


def _interleaved(catalogs: dict, xq: np.ndarray, rounds: int = 8) -> dict[str, float]:
    """Queries per second of ``search_vectors`` on each catalog, alternating in rounds."""
    for cat in catalogs.values():
        cat.search_vectors(xq[:3], k=10)  # warm-up
    spent = dict.fromkeys(catalogs, 0.0)
    parts = np.array_split(np.arange(len(xq)), rounds)
    for part in parts:
        for name, cat in catalogs.items():
            start = time.perf_counter()
            for i in part:
                cat.search_vectors(xq[i], k=10)
            spent[name] += time.perf_counter() - start
    return {name: len(xq) / s for name, s in spent.items()}


if __name__ == "__main__":
    raise SystemExit(main())
