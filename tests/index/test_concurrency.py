"""Concurrent use: threads of one process, and several processes on one catalog (a folder,
or a PostgreSQL database whose processes share this machine's index cache).

Writers are fresh interpreters (``subprocess``): a ``fork`` of this process would hang
in faiss once OpenMP has run here.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from index.catalog import Catalog
from tests.index.conftest import block_image, soon

ROOT = Path(__file__).resolve().parents[2]


def test_threads_add_delete_and_search_at_once(catalog_location):
    cat = Catalog(catalog_location, factory="IVF4,Flat", min_train_size=30)
    errors: list[BaseException] = []
    deleted: list[str] = []
    added: list[str] = []
    lock = threading.Lock()
    done = threading.Event()

    def guard(fn):
        def run(*args):
            try:
                fn(*args)
            except BaseException as exc:  # collected and asserted empty below
                errors.append(exc)

        return run

    @guard
    def adder(worker: int) -> None:
        for i in range(20):
            pid = f"w{worker}-{i:02d}"
            cat.add(pid, block_image(pid, size=24), metadata={"worker": worker})
            with lock:
                added.append(pid)

    @guard
    def deleter() -> None:
        rng = random.Random(0)
        while not done.is_set() or len(deleted) < 15:
            with lock:
                candidates = [p for p in added if p not in deleted]
            if candidates:
                pid = rng.choice(candidates)
                cat.delete(pid)
                with lock:
                    deleted.append(pid)
            if len(deleted) >= 15:
                return

    @guard
    def searcher(seed: int) -> None:
        rng = random.Random(seed)
        while not done.is_set():
            with lock:
                pool = list(added)
            if pool:
                pid = rng.choice(pool)
                hits = cat.search(block_image(pid, size=24), k=3)
                assert all(h.score <= 1.0 + 1e-4 for h in hits)
                cat.list(limit=7)
                cat.info()

    adders = [threading.Thread(target=adder, args=(w,)) for w in range(3)]
    others = [threading.Thread(target=deleter)] + [
        threading.Thread(target=searcher, args=(s,)) for s in range(2)
    ]
    for t in adders + others:
        t.start()
    for t in adders:
        t.join(timeout=300)
    done.set()
    for t in others:
        t.join(timeout=300)
    assert not errors, errors
    assert len(deleted) == 15
    expected = set(added) - set(deleted)
    assert len(added) == 60
    report = cat.verify()
    assert report["consistent"] and report["products"] == 45, report
    # trained while the threads ran (or, by a follower thread, a moment later)
    soon(cat, lambda: cat.info()["index"]["state"] == "ready")
    xq = cat.embed([block_image(p, size=24) for p in sorted(expected)])
    assert [h[0].product_id for h in cat.search_vectors(xq, k=1)] == sorted(expected)
    cat.close()


WRITER = """
import sys
import pytest

from index.catalog import Catalog
from tests.index.conftest import block_image
cat = Catalog(sys.argv[1])
name = sys.argv[2]
for i in range(8):
    pid = f"{name}-{i:02d}"
    cat.add(pid, block_image(pid, size=24))
    if i % 4 == 3:
        cat.delete(f"{name}-{i - 1:02d}")
cat.close()
print("done", flush=True)
"""


@pytest.mark.slow
def test_two_processes_share_a_catalog(catalog_location):
    reader = Catalog(catalog_location, factory="HNSW32")  # opened before the writers start
    reader.add("parent", block_image("parent", size=24))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, catalog_location, name],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    searches = 0
    while any(w.poll() is None for w in writers):  # search while they write
        reader.search(block_image("parent", size=24), k=5)
        searches += 1
        time.sleep(0.05)
    for w in writers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0 and out.strip() == "done", err
    assert searches > 0
    expected = {"parent"} | {
        f"{n}-{i:02d}"
        for n in "ab"
        for i in range(8)
        if i % 4 != 2  # 2 and 6 deleted
    }
    report = reader.verify()  # the reader caught up with both writers incrementally
    assert report["consistent"] and report["products"] == len(expected), report
    xq = reader.embed([block_image(p, size=24) for p in sorted(expected)])
    assert [h[0].product_id for h in reader.search_vectors(xq, k=1)] == sorted(expected)
    assert "a-02" not in reader and "b-06" not in reader
    reader.close()
    with Catalog(catalog_location, create=False) as again:
        assert again.verify()["consistent"] and len(again) == len(expected)
