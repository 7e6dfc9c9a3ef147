"""Two ``siammatch serve`` instances on one PostgreSQL catalog, as two machines would run.

Each instance has its own FAISS cache folder (its "local disk"); both serve the same
database. The test adds through one and searches through the other, SIGKILLs a server
while a client is adding through it, SIGKILLs a writer in the middle of an import,
restarts the servers, and checks that nothing acknowledged was lost and that every cache
agrees with the database (``siammatch catalog info --verify``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import psycopg
import pytest
import requests

from tests.api.http_helpers import ROOT, free_port, png_bytes, wait_ready
from tests.helpers import clutter_scene, paste, product_image
from tests.index.conftest import block_image

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "api.cli"]
SERVE_ARGS = ["--recipe", "siamfc_pixels", "--threads", "2", "--timeout", "120"]


@dataclass
class Node:
    """A running ``siammatch serve`` (its own process group) and its cache folder."""

    base: str
    proc: subprocess.Popen
    cache: Path
    log: Path


@contextmanager
def node(tmp: Path, name: str, url: str, *, workers: int = 1) -> Iterator[Node]:
    """Start ``siammatch serve --catalog url`` with the FAISS cache ``tmp/name-cache``;
    SIGKILL its whole process group at the end unless it is already gone."""
    port = free_port()
    cache = tmp / f"{name}-cache"
    log_path = tmp / f"{name}-{port}.log"
    argv = [sys.executable, "-m", "api.cli_serve", "--port", str(port), "--catalog", url]
    argv += ["--index-cache", str(cache), "--workers", str(workers), *SERVE_ARGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield Node(base=base, proc=proc, cache=cache, log=log_path)
    finally:
        kill(proc)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (gunicorn's master and its workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def add(base: str, product_id: str, image: np.ndarray) -> requests.Response:
    return requests.post(
        f"{base}/v1/catalog",
        data={"id": product_id},
        files={"image": ("p.png", png_bytes(image), "image/png")},
        timeout=60,
    )


def found(base: str, scene_png: bytes) -> list[str]:
    response = requests.post(
        f"{base}/v1/search",
        files={"scene": ("s.png", scene_png, "image/png")},
        data={"k": "3"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return [r["product_id"] for r in response.json()["results"]]


def db_ids(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT product_id FROM siammatch.products")}


def verify(url: str, cache: Path) -> dict:
    """``siammatch catalog info --verify`` against one node's cache."""
    result = subprocess.run(
        [*CLI, "catalog", "info", "--verify", "--catalog", url, "--index-cache", str(cache)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_two_nodes_share_one_database(pg_cluster, tmp_path):
    url = pg_cluster.new_database("multinode")
    coffee = cv2.resize(product_image("coffee"), (80, 80), interpolation=cv2.INTER_AREA)
    scene = png_bytes(paste(clutter_scene(200, 260, seed=3), coffee, (140, 70, 220, 150)))
    with node(tmp_path, "a", url, workers=2) as a, node(tmp_path, "b", url) as b:
        assert a.base != b.base and a.cache != b.cache
        assert found(b.base, scene) == []
        # an add through A is found by /v1/search on B within a second
        assert add(a.base, "coffee", coffee).status_code == 201
        acked_at = time.monotonic()
        while True:  # the search that finds it must have been sent within the second
            sent = time.monotonic()
            if "coffee" in found(b.base, scene) or sent - acked_at > 5:
                break
        assert sent - acked_at <= 1.0
        # SIGKILL A while a client keeps adding through it: every acknowledged add survives
        acked: list[str] = []

        def writer() -> None:
            for i in range(200):
                try:
                    response = add(a.base, f"w{i:03d}", block_image(f"w{i}", size=64))
                except requests.RequestException:
                    return
                if response.status_code != 201:
                    return
                acked.append(f"w{i:03d}")

        thread = threading.Thread(target=writer)
        thread.start()
        deadline = time.monotonic() + 60
        while len(acked) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        kill(a.proc)
        thread.join(timeout=60)
        assert len(acked) >= 5
        stored = db_ids(url)
        assert set(acked) <= stored
        # B, still up, serves every product A committed before it died
        ready = requests.get(f"{b.base}/readyz", timeout=30).json()
        assert ready["catalog"]["backend"] == "postgresql"
        assert ready["catalog"]["products"] == len(stored)
        assert ready["catalog"]["index"]["vectors"] == len(stored)
        kill(b.proc)
    # a writer SIGKILLed in the middle of an import loses no committed chunk, and the
    # import run again completes it
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(160):
        cv2.imwrite(str(photos / f"i{i:03d}.png"), block_image(f"i{i}", size=48)[..., ::-1])
    importer = [*CLI, "catalog", "import", str(photos)]
    importer += ["--catalog", url, "--index-cache", str(tmp_path / "importer-cache")]
    proc = subprocess.Popen(
        importer, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.startswith("i") for p in db_ids(url)):
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    partial = {p for p in db_ids(url) if p.startswith("i")}
    assert 0 < len(partial) < 160 and len(partial) % 64 == 0  # whole chunks only
    result = subprocess.run(
        [*importer, "--skip-existing"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    stored = db_ids(url)
    assert {f"i{i:03d}" for i in range(160)} <= stored
    # both nodes restart on their old caches, catch up, and agree with the database
    with node(tmp_path, "a", url) as a, node(tmp_path, "b", url) as b:
        for n in (a, b):
            ready = requests.get(f"{n.base}/readyz", timeout=30).json()["catalog"]
            assert ready["replication"]["changes_behind"] == 0
            assert ready["index"]["vectors"] == len(stored)
    for cache in (tmp_path / "a-cache", tmp_path / "b-cache"):
        report = verify(url, cache)
        assert report["verify"] == {"consistent": True, "missing": 0, "extra": 0}
        assert report["products"] == len(stored)
        assert report["index_cache"].startswith(str(cache))
