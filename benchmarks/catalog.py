"""Build time, memory, search speed and recall of the catalog's FAISS index types.

Fixed workload: ``--n`` (default 1,000,000) database vectors of ``--d`` (256) dimensions,
synthetic and clustered (2,048 clusters, each a noisy 24-dimensional patch, unit norm;
seed 0), and ``--nq`` (1,000) query vectors from the same clusters (seed 1). Each index is
the catalog's own :class:`index.faiss_index.VectorIndex` with the catalog's default search
parameters (``nprobe = clamp(nlist / 32, 32, nlist)``; HNSW ``efSearch`` 128 on a graph
built with ``efConstruction`` 80), built the way the catalog builds it: trained on a
random sample (39 points per centroid, at least 16,384) and filled in chunks of 65,536
with the product ids.

Per index type: build time (train + add), resident-memory growth during the build and the
serialised index size, single-query throughput (up to ``--single`` queries searched one by
one with k = 10, stopping after 20 s, on one OpenMP thread as in a multi-worker server),
batched throughput (all ``nq`` queries in one call, all threads), and recall@10 against
exact search (``IndexFlatIP`` ground truth on the ``nq`` queries).

    python benchmarks/catalog.py [--n 1000000] [--factories Flat IVF4096,Flat HNSW32 ...]
                                 [--sweep nprobe=256 efSearch=256]

``--sweep`` adds rows for other search parameters on the same built index (where the
parameter applies).

    python benchmarks/catalog.py --stores [--n 100000] [--queries 400]

compares the catalog's stores instead: import rate into SQLite and PostgreSQL, a replica's
catch-up on the change log, and search QPS of a PostgreSQL replica against the embedded
store (:mod:`benchmarks.catalog_stores`).

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

# Run as a script, this folder is sys.path[0]; import the project from its root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

DEFAULT_FACTORIES = ["Flat", "IVF4096,Flat", "HNSW32", "IVF4096,PQ32x4fs", "IVF4096,PQ32"]


def clustered(n: int, d: int, *, seed: int, centers: int = 2048, chunk: int = 100_000):
    """``(n, d)`` float32 unit vectors around ``centers`` low-dimensional cluster patches."""
    shape_rng = np.random.default_rng(1234)
    intrinsic = 24
    mu = shape_rng.standard_normal((centers, d)).astype(np.float32)
    basis = shape_rng.standard_normal((centers, intrinsic, d)).astype(np.float32)
    basis /= np.sqrt(intrinsic)
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        labels = rng.integers(0, centers, m)
        z = rng.standard_normal((m, intrinsic)).astype(np.float32)
        x = mu[labels] + 1.5 * np.einsum("ni,nid->nd", z, basis[labels])
        x += 0.1 * rng.standard_normal((m, d)).astype(np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> int:
    if "--stores" in sys.argv[1:]:
        from benchmarks.catalog_stores import main as stores_main

        return stores_main([a for a in sys.argv[1:] if a != "--stores"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="database vectors")
    parser.add_argument("--d", type=int, default=256, help="dimensions")
    parser.add_argument("--nq", type=int, default=1000, help="query vectors (batched, recall)")
    parser.add_argument("--single", type=int, default=200, help="queries timed one by one")
    parser.add_argument("--factories", nargs="+", default=DEFAULT_FACTORIES)
    parser.add_argument("--sweep", nargs="*", default=[], help="extra ParameterSpace settings")
    args = parser.parse_args()

    import faiss

    from index.faiss_factory import train_size
    from index.faiss_index import VectorIndex

    k = 10
    t0 = time.perf_counter()
    xb = clustered(args.n, args.d, seed=0)
    xq = clustered(args.nq, args.d, seed=1)
    ids = np.arange(1, args.n + 1, dtype=np.int64)
    exact = faiss.IndexFlatIP(args.d)
    exact.add(xb)
    _, gt = exact.search(xq, k)
    gt = ids[gt]
    del exact
    setup = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    rows = []
    for factory in args.factories:
        rss0 = rss_bytes()
        start = time.perf_counter()
        index = VectorIndex.empty(factory, args.d, trained=True)
        if not index.index.is_trained:
            size = min(args.n, max(train_size(factory, args.d), 64 * 256))
            sample = np.sort(rng.choice(args.n, size=size, replace=False))
            index.train(xb[sample])
        train_s = time.perf_counter() - start
        for lo in range(0, args.n, 65536):
            index.add(ids[lo : lo + 65536], xb[lo : lo + 65536])
        build_s = time.perf_counter() - start
        rss = rss_bytes() - rss0
        nbytes = int(faiss.serialize_index(index.index).nbytes)
        for setting in [None, *args.sweep]:
            if setting is not None:
                if not _applies(setting, index.inner):
                    continue
                faiss.ParameterSpace().set_index_parameters(index.inner, setting)
            single_qps, batch_qps, recall = _measure(index, xq, gt, k=k, single=args.single)
            settings = ", ".join(f"{key}={v}" for key, v in index.settings().items()) or "-"
            build = (train_s, build_s, rss, nbytes) if setting is None else None
            rows.append((factory, settings, build, single_qps, batch_qps, recall))
        print(f"# done {factory} ({build_s:.0f} s build)", file=sys.stderr, flush=True)
        del index
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads; "
        f"n={args.n:,} d={args.d} nq={args.nq} k={k}; data + ground truth {setup:.0f} s"
    )
    print(
        "| index | search params | train s | build s | RSS growth MB | index MB | "
        "QPS single (1 thread) | QPS batch | recall@10 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for factory, settings, build, sq, bq, recall in rows:
        if build is None:
            cells = "(same) | | |"
        else:
            train_s, build_s, rss, nbytes = build
            cells = f"{train_s:.1f} | {build_s:.1f} | {rss / 2**20:.0f} | {nbytes / 2**20:.0f}"
        print(f"| {factory} | {settings} | {cells} | {sq:.0f} | {bq:.0f} | {recall:.3f} |")
    return 0


def _applies(setting: str, index) -> bool:
    """Whether every ``name=value`` of ``setting`` is a parameter of ``index``."""
    import faiss

    names = [part.split("=")[0] for part in setting.split(",")]
    ivf = faiss.try_extract_index_ivf(index)
    hnsw = isinstance(faiss.downcast_index(index), faiss.IndexHNSW)
    return all((n == "nprobe" and ivf is not None) or (n == "efSearch" and hnsw) for n in names)


def _measure(index, xq: np.ndarray, gt: np.ndarray, *, k: int, single: int):
    """Single-query QPS (one OpenMP thread), batched QPS and recall@k against ``gt``."""
    import faiss

    index.search(xq[:10], k)  # warm-up
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    start = time.perf_counter()
    done = 0
    while done < single and (done < 5 or time.perf_counter() - start < 20):
        index.search(xq[done : done + 1], k)
        done += 1
    single_qps = done / (time.perf_counter() - start)
    faiss.omp_set_num_threads(threads)
    start = time.perf_counter()
    _, I = index.search(xq, k)  # noqa: E741 - faiss naming
    batch_qps = len(xq) / (time.perf_counter() - start)
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(I, gt, strict=True)]))
    return single_qps, batch_qps, recall


if __name__ == "__main__":
    raise SystemExit(main())
