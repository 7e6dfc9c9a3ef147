"""Issue 18 through the real ``siammatch serve``: a bounded-time seeded fuzz over every
route finds no 5xx while ``/healthz`` keeps answering within a second and worker memory
stays bounded. (Slow clients, gunicorn's own errors, the time limit: ``test_serve_worker``.)"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import requests
from PIL import Image

from tests.api.http_helpers import b64
from tests.api.serve_helpers import HEALTHZ_BOUND, healthz_seconds
from tests.helpers import paste, png_header, product_image

#: Resident memory no worker may pass during the fuzz: the two recipes, the catalog and the
#: interpreter take about 0.85 GiB, the fuzz's accepted images are at most 1.2 MP, and its
#: header-only giants (2,000,000x1 strips, 200 MP bombs) must be refused before any
#: allocation (such a strip once took a worker to 5.5 GiB).
WORKER_RSS_BOUND = 1.5 * 2**30
FUZZ_SEED = 18
FUZZ_CASES = 160
FUZZ_SECONDS = 30.0  # stop early past this, whatever is left

# The ``hardened_catalog`` server (one per catalog backend) is a module fixture of
# tests/api/conftest.py.


# -- fuzz ----------------------------------------------------------------------------------


def _image_bytes(rng: random.Random) -> bytes:
    """A random image upload: mostly real PNG/JPEG of random size and aspect ratio (thin
    strips included), some header-only giants and bombs, some junk."""
    kind = rng.random()
    if kind < 0.12:  # header only: huge, thin or both (refused before decoding)
        width, height = (int(10 ** rng.uniform(0, 6.5)) for _ in range(2))
        return png_header(width, height)
    if kind < 0.18:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
    if kind < 0.20:
        return b""
    long_side = int(10 ** rng.uniform(0, 3.05))  # up to about 1,100 px
    aspect = 10 ** rng.uniform(0, 2)  # up to 100:1
    short_side = max(1, round(long_side / aspect))
    width, height = (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)
    if width * height > 1_200_000:
        width, height = min(width, 1000), min(height, 1000)
    cells = np.random.default_rng(rng.getrandbits(32)).integers(0, 256, (4, 4, 3), np.uint8)
    image = cv2.resize(cells, (width, height), interpolation=cv2.INTER_NEAREST)
    if rng.random() < 0.3 and width >= 40 and height >= 40:  # a real product somewhere
        side = min(width, height) // 2
        product = cv2.resize(product_image("coffee"), (side, side))
        image = paste(image, product, (0, 0, side, side))
    buffer = io.BytesIO()
    fmt = "JPEG" if rng.random() < 0.2 else "PNG"
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


def _json_value(rng: random.Random, depth: int = 0) -> object:
    """A random JSON value: scalars of every kind, nested up to a few levels, sometimes
    nested far beyond any limit."""
    kind = rng.random()
    if kind < 0.05:
        return _deep(rng.randint(30, 800))  # (json.dumps itself recurses)
    if depth > 3 or kind < 0.55:
        return rng.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                rng.randint(-(10**20), 10**20),
                rng.uniform(-1e6, 1e6),
                1e308,
                "",
                "x" * rng.randint(1, 50),
                "1,2,3,4",
                "nan",
                "inf",
                "-0",
                "\u00e9\u4e2d",
            ]
        )
    if kind < 0.8:
        return [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {f"k{i}": _json_value(rng, depth + 1) for i in range(rng.randint(0, 4))}


def _deep(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def _box(rng: random.Random) -> object:
    """A random box: plausible, inverted, thin, outside, huge, or malformed."""
    kind = rng.random()
    if kind < 0.6:
        x0, y0 = rng.uniform(-20, 300), rng.uniform(-20, 300)
        scale = 10 ** rng.uniform(-1, 3)
        values = [x0, y0, x0 + rng.uniform(-0.5, 1) * scale, y0 + rng.uniform(-0.5, 1) * scale]
        return [round(v, rng.randint(0, 3)) for v in values]
    if kind < 0.8:
        return rng.choice(
            [[0, 0, 1e30, 1e30], [0, 0, 300, 0.5], [5, 5, 5, 5], [-1e9, -1e9, 1e9, 1e9]]
        )
    return _json_value(rng)


def _text(value: object) -> str:
    if (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int | float) for v in value)
    ):
        return ",".join(str(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def _fuzz_request(rng: random.Random, ids: list[str]) -> tuple[str, str, dict]:
    """``(method, path, requests keyword arguments)`` of one random request."""
    route = rng.choice(
        ["match", "match", "match", "catalog_add", "catalog_add", "search", "search", "read"]
    )
    as_json = rng.random() < 0.4

    def pick_id() -> object:
        if ids and rng.random() < 0.6:
            return rng.choice(ids)
        return rng.choice(["", "../x", "a" * 200, "ok-id", 5, None, [], "\u00e9"])

    fields: dict[str, object] = {}
    images: dict[str, bytes] = {}
    if route == "match":
        path = "/v1/match"
        if rng.random() < 0.2:
            fields["reference_id"] = pick_id()
        else:
            images["reference"] = _image_bytes(rng)
        images["scene"] = _image_bytes(rng)
        for name, make in (
            ("reference_box", lambda: _box(rng)),
            ("threshold", lambda: rng.choice([0, 0.5, 1, 2, -1, "0.3", "x", None])),
            ("max_instances", lambda: rng.choice([1, 3, 20, 0, 10**6, "2", "x", 2.5])),
            ("recipe", lambda: rng.choice(["siammask_small"] * 3 + ["siamfc_pixels", "", 5])),
        ):
            if rng.random() < 0.4 + 0.3 * (name == "recipe"):
                fields[name] = make()
    elif route == "catalog_add":
        path = "/v1/catalog"
        fields["id"] = rng.choice([f"fz-{rng.getrandbits(24):06x}", pick_id()])
        images["image"] = _image_bytes(rng)
        if rng.random() < 0.5:
            fields["metadata"] = rng.choice(
                [{"name": "x"}, _json_value(rng), {"deep": _deep(rng.randint(25, 40))}]
            )
        if rng.random() < 0.4:
            fields["box"] = _box(rng)
    elif route == "search":
        path = "/v1/search"
        images["scene"] = _image_bytes(rng)
        if rng.random() < 0.5:
            fields["k"] = rng.choice([1, 5, 20, 21, 0, "3", "x", 1.0])
        if rng.random() < 0.3:
            fields["threshold"] = rng.choice([0, 0.9, 1.5, "y"])
    else:
        product = rng.choice([*ids, "nope", "a" * 300, "%2e%2e"]) if ids else "nope"
        method, path = rng.choice(
            [
                ("GET", "/v1/catalog"),
                ("GET", f"/v1/catalog?limit={rng.choice([1, 0, 5, 10**9, 'x'])}"),
                ("GET", f"/v1/catalog?cursor={rng.choice(['', 'zz', '%00', 'a' * 500])}"),
                ("GET", f"/v1/catalog/{product}"),
                ("GET", f"/v1/catalog/{product}/image"),
                ("DELETE", f"/v1/catalog/{product}"),
                ("GET", "/healthz"),
                ("GET", "/readyz"),
                ("GET", "/metrics"),
                ("GET", "/openapi.json"),
                ("GET", "/"),
                ("PUT", "/v1/match"),
                ("POST", "/v1/catalog/x"),
            ]
        )
        return method, path, {}
    if rng.random() < 0.04:  # nested far deeper than any encoder could write
        depth = rng.randint(1000, 100_000)
        body = rng.choice(["[", '{"a":']) * depth
        headers = {"Content-Type": "application/json"}
        return "POST", path, {"data": body, "headers": headers}
    if rng.random() < 0.1:  # a random JSON document as the whole body
        return "POST", path, {"json": _json_value(rng)}
    if as_json:
        body = {k: b64(v) for k, v in images.items()}
        body.update(fields)
        return "POST", path, {"json": body}
    data = {k: _text(v) for k, v in fields.items() if v is not None}
    files = {k: (f"{k}.img", v) for k, v in images.items()}
    return "POST", path, {"data": data, "files": files}


def _rss(pid: int) -> int:
    """Resident memory of process ``pid``, bytes (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    kib = next(line.split()[1] for line in text.splitlines() if line.startswith("VmRSS:"))
    return int(kib) * 1024


def test_fuzz_every_route(hardened_catalog):
    """Random image sizes and aspect ratios, JSON shapes and boxes at every route, from two
    clients at once, seeded and bounded in time, on each catalog backend."""
    rng = random.Random(FUZZ_SEED)
    cases = []
    ids = ["synth-001", "synth-002"]
    for _ in range(FUZZ_CASES):
        method, path, kwargs = _fuzz_request(rng, ids)
        sent = kwargs.get("data", kwargs.get("json"))
        if path == "/v1/catalog" and isinstance(sent, dict) and isinstance(sent.get("id"), str):
            ids.append(sent["id"])
        cases.append((method, path, kwargs))
    workers = hardened_catalog.worker_pids()
    start_rss = {pid: _rss(pid) for pid in workers}
    stop = threading.Event()
    healthz: list[float] = []
    peak_rss = dict.fromkeys(workers, 0)

    def monitor() -> None:
        while not stop.is_set():
            healthz.append(healthz_seconds(hardened_catalog.base))
            for pid in workers:
                peak_rss[pid] = max(peak_rss[pid], _rss(pid))
            stop.wait(0.2)

    failures: list[str] = []
    deadline = time.monotonic() + FUZZ_SECONDS
    done: list[int] = []
    shipped: list[str] = []

    def run(part: list) -> None:
        session = requests.Session()
        for method, path, kwargs in part:
            if time.monotonic() > deadline:
                return
            response = session.request(method, hardened_catalog.base + path, timeout=60, **kwargs)
            done.append(response.status_code)
            if response.status_code == 200 and "siammask_small" in response.text[:40]:
                shipped.append(path)
            sent = kwargs.get("json", kwargs.get("data"))
            summary = f"{method} {path} {sorted(sent) if isinstance(sent, dict) else type(sent)}"
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {summary}: {response.text[:300]}")
            elif response.status_code >= 400:
                body = response.json()
                if set(body) != {"error"} or set(body["error"]) != {"code", "message"}:
                    failures.append(f"not the error shape: {summary}: {response.text[:300]}")

    watcher = threading.Thread(target=monitor)
    watcher.start()
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(run, [cases[0::2], cases[1::2]]))
    finally:
        stop.set()
        watcher.join()
    print(
        f"fuzz: {len(done)} requests, statuses {sorted(set(done))}, /healthz max "
        f"{max(healthz):.3f} s over {len(healthz)} probes, worker RSS "
        f"{max(start_rss.values()) / 2**20:.0f} MiB before, "
        f"{max(peak_rss.values()) / 2**20:.0f} MiB at most; {len(shipped)} shipped-recipe matches"
    )
    assert not failures, "\n".join(failures[:10])
    assert len(done) >= 60, f"only {len(done)} requests in {FUZZ_SECONDS} s"
    assert max(healthz) < HEALTHZ_BOUND, max(healthz)
    assert 0 < max(peak_rss.values()) < WORKER_RSS_BOUND, peak_rss
    assert hardened_catalog.worker_pids() == workers  # no worker died or was replaced
