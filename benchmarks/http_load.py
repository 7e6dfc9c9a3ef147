"""HTTP throughput and latency of ``POST /v1/match`` under gunicorn on loopback.

Starts ``siammatch serve`` (through ``python -m api.cli_serve``, no catalog) on a free
loopback port, then for 1, 4 and 16 concurrent clients (each a thread with its own
``requests.Session``) sends a fixed number of identical match requests and reports the
throughput and the median and 99th-percentile latency. The workload is fixed: the
``coffee`` product of scikit-image resized to 80x80 as reference (PNG, multipart) and a
deterministic 240x320 scene of sample-photo tiles with the product pasted at 100 px,
default recipe ``siamfc_pixels`` (``--recipe``/``--weights`` for others). Every response
must be a 200 with at least one instance: any error makes the script exit with status 1.

    python benchmarks/http_load.py [--recipe R --weights W] [--workers 2] [--threads 1]
                              [--clients 1,4,16] [--requests 48]

Prints a Markdown table. Latency includes queueing: with more clients than workers the
requests wait for a free worker, so p50 grows with the client count while throughput
saturates at what the worker processes can compute.
"""

# ruff: noqa: E402 - the standard-library imports must follow the sys.path fix below
from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's ``http`` package, and running it puts its
# folder first on sys.path, where ``requests`` (via urllib3's ``import http.client``) would
# find it instead of the real one. Drop the folder before importing anything else.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import io
import logging
import os
import platform
import signal
import socket
import statistics
import subprocess
import threading
import time

import cv2
import numpy as np
import requests
import skimage.data
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("benchmarks.http")


def workload() -> tuple[bytes, bytes]:
    """The reference and scene PNGs of every request."""
    product = cv2.resize(
        skimage.data.coffee()[90:290, 180:380], (80, 80), interpolation=cv2.INTER_AREA
    )
    rng = np.random.default_rng(0)
    tiles = [skimage.data.rocket(), skimage.data.chelsea(), skimage.data.astronaut()]
    scene = np.zeros((240, 320, 3), np.uint8)
    for y in range(0, 240, 80):
        for x in range(0, 320, 80):
            src = tiles[rng.integers(len(tiles))]
            sy, sx = rng.integers(0, src.shape[0] - 80), rng.integers(0, src.shape[1] - 80)
            scene[y : y + 80, x : x + 80] = src[sy : sy + 80, sx : sx + 80, :3]
    scene[100:200, 150:250] = cv2.resize(product, (100, 100), interpolation=cv2.INTER_LINEAR)
    return _png(product), _png(scene)


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    """A currently free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    """Start ``siammatch serve`` and wait until ``/readyz`` answers 200."""
    cmd = [
        sys.executable,
        "-m",
        "api.cli_serve",
        "--no-catalog",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
    ]
    if args.recipe:
        cmd += ["--recipe", args.recipe]
    if args.weights:
        cmd += ["--weights", args.weights]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL if not args.verbose else None)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                return proc
        except requests.RequestException:  # not listening yet, or workers still booting
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError("the server did not become ready within 300 s")


def stop_server(proc: subprocess.Popen) -> int:
    """SIGTERM (gunicorn's graceful stop) and wait."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def run_level(url: str, files: tuple[bytes, bytes], *, clients: int, total: int):
    """``total`` requests from ``clients`` threads; ``(latencies_s, errors, wall_s)``."""
    reference, scene = files
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    remaining = [total]

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            started = time.perf_counter()
            try:
                response = session.post(
                    url,
                    files={"reference": ("ref.png", reference), "scene": ("scene.png", scene)},
                    timeout=300,
                )
                ok = response.status_code == 200 and bool(response.json()["instances"])
                problem = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
            except (requests.RequestException, ValueError, KeyError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - started
            with lock:
                if problem is None:
                    latencies.append(elapsed)
                else:
                    errors.append(problem)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank)."""
    ordered = sorted(values)
    rank = max(1, int(np.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=None, help="recipe (default: the service's)")
    parser.add_argument("--weights", default=None, help="weights file of the recipe")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--clients", default="1,4,16", help="client counts, comma-separated")
    parser.add_argument("--requests", type=int, default=48, help="requests per client count")
    parser.add_argument("--verbose", action="store_true", help="show the server's log")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    files = workload()
    port = free_port()
    proc = start_server(args, port)
    url = f"http://127.0.0.1:{port}/v1/match"
    rows = []
    failed = False
    try:
        recipe = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()
        _, warm_errors, _ = run_level(url, files, clients=args.workers, total=2 * args.workers)
        if warm_errors:
            logger.error("warm-up failed: %s", warm_errors[0])
            return 1
        for clients in levels:
            latencies, errors, wall = run_level(
                url, files, clients=clients, total=max(args.requests, clients)
            )
            failed |= bool(errors)
            for problem in errors[:3]:
                logger.error("error at %d clients: %s", clients, problem)
            rows.append(
                (
                    clients,
                    len(latencies) + len(errors),
                    len(errors),
                    len(latencies) / wall,
                    1000 * statistics.median(latencies) if latencies else float("nan"),
                    1000 * percentile(latencies, 99) if latencies else float("nan"),
                )
            )
    finally:
        status = stop_server(proc)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"`POST /v1/match`, recipe `{recipe['default_recipe']}`, gunicorn {args.workers} "
        f"worker(s) x {args.threads} thread(s), 240x320 scene + 80x80 reference (PNG, "
        f"multipart), loopback; {platform.processor() or platform.machine()}, {cores} cores",
        "",
        "| clients | requests | errors | throughput (req/s) | p50 (ms) | p99 (ms) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for clients, total, errors, rps, p50, p99 in rows:
        lines.append(f"| {clients} | {total} | {errors} | {rps:.2f} | {p50:.0f} | {p99:.0f} |")
    sys.stdout.write("\n".join(lines) + "\n")
    if status != 0:
        logger.error("the server exited with status %d", status)
    return 1 if failed or status != 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
