"""Issue 18 through the real ``siammatch serve`` (gunicorn, ``api.gunicorn_worker``): slow
and idle clients cannot starve the workers, gunicorn's own errors are JSON, a request past
its time limit gets a JSON 500, and a bounded-time seeded fuzz over every route finds no
5xx while ``/healthz`` keeps answering within a second and worker memory stays bounded."""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from PIL import Image

from tests.api.http_helpers import Server, b64, png_bytes, serving
from tests.helpers import clutter_scene, paste, png_header, product_image

READ_TIMEOUT = 3.0  # the module server's --read-timeout, seconds
HEALTHZ_BOUND = 1.0  # seconds
#: Resident memory no worker may pass during the fuzz: the two recipes, the catalog and the
#: interpreter take about 0.85 GiB, the fuzz's accepted images are at most 1.2 MP, and its
#: header-only giants (2,000,000x1 strips, 200 MP bombs) must be refused before any
#: allocation (such a strip once took a worker to 5.5 GiB).
WORKER_RSS_BOUND = 1.5 * 2**30
FUZZ_SEED = 18
FUZZ_CASES = 160
FUZZ_SECONDS = 30.0  # stop early past this, whatever is left


@pytest.fixture(scope="module")
def hardened(tmp_path_factory) -> Server:
    """``siammatch serve``: 2 workers of 4 threads, template matching by default (light),
    the shipped default recipe on request (its verifier and box voting are the code the
    thin images broke), a 2-product catalog."""
    folder = tmp_path_factory.mktemp("hardened")
    args = ["--catalog", str(folder / "catalog"), "--seed-products", "2", "--workers", "2"]
    args += ["--threads", "4", "--recipe", "siamfc_pixels", "--extra-recipe", "siammask_small"]
    args += ["--read-timeout", str(READ_TIMEOUT)]
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")}
    with serving(folder, args, env=env) as server:
        yield server


# -- raw HTTP ------------------------------------------------------------------------------


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=15)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response from ``sock`` (interim 1xx skipped): status, headers, body."""
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {buffer[:200]!r}"
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        if status >= 200:
            break
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
    return status, headers, buffer[:length]


def _raw(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with _connect(port) as sock:
        sock.sendall(data)
        return _read_response(sock)


def _json_error(response: tuple[int, dict[str, str], bytes], status: int) -> dict:
    got, headers, body = response
    assert got == status, (got, body[:300])
    assert headers["content-type"] == "application/json", headers
    assert headers["x-content-type-options"] == "nosniff"
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"}
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return error


def _healthz_seconds(base: str) -> float:
    started = time.monotonic()
    response = requests.get(base + "/healthz", timeout=10)
    assert response.status_code == 200
    return time.monotonic() - started


def _match_files() -> dict:
    product = cv2.resize(product_image("coffee"), (64, 64), interpolation=cv2.INTER_AREA)
    scene = paste(clutter_scene(160, 200, seed=5), product, (100, 50, 164, 114))
    return {"reference": ("r.png", png_bytes(product)), "scene": ("s.png", png_bytes(scene))}


# -- slow clients --------------------------------------------------------------------------


def test_slow_and_idle_clients_do_not_starve_the_service(hardened):
    port, held = hardened.port, []
    try:
        started = time.monotonic()
        # Three times as many half-sent headers as the two workers have threads.
        for _ in range(3 * 2 * 4):
            sock = _connect(port)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Pad: ")
            held.append(sock)
        # A body promised and never finished.
        body = _connect(port)
        body.sendall(
            b"POST /v1/match HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100000\r\n\r\n{"scene": "AAAA'
        )
        # Kept-alive connections that answered one request, then start another and stall.
        kept = []
        for _ in range(4):
            sock = _connect(port)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n\r\n")
            assert _read_response(sock)[0] == 200
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
            kept.append(sock)
        # Connections that never send a byte.
        idle = [_connect(port) for _ in range(8)]
        held += [body, *kept, *idle]
        time.sleep(0.3)
        for _ in range(10):
            assert _healthz_seconds(hardened.base) < HEALTHZ_BOUND
        with ThreadPoolExecutor(8) as pool:  # every thread of both workers is free
            assert max(pool.map(lambda _: _healthz_seconds(hardened.base), range(8))) < 2.0
        match = requests.post(hardened.base + "/v1/match", files=_match_files(), timeout=60)
        assert match.status_code == 200, match.text
        # A trickle does not extend the time a client has to send its request.
        held[0].sendall(b"a")
        time.sleep(0.5)
        held[0].sendall(b"b")
        # Past --read-timeout, whoever sent something is answered 408; idle ones are closed.
        for sock in (held[0], held[1], body, kept[0]):
            error = _json_error(_read_response(sock), 408)
            assert error["code"] == "request_timeout"
        assert time.monotonic() - started < READ_TIMEOUT + 15
        assert idle[0].recv(100) == b""
    finally:
        for sock in held:
            sock.close()
    assert _healthz_seconds(hardened.base) < HEALTHZ_BOUND


# -- gunicorn's own errors -----------------------------------------------------------------

_HOST = b"Host: test\r\n"


@pytest.mark.parametrize(
    "request_bytes, status, code",
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n" + _HOST + b"\r\n", 414, "uri_too_long"),
        (b"GET /" + b"a" * 70_000, 414, "uri_too_long"),  # and no end of line in 64 KiB
        (b"POST /v1/match HTTP/1.1\r\n" + _HOST + b"Content-Length: 12x\r\n\r\n", 400, None),
        (b"POST /v1/match HTTP/1.1\r\n" + _HOST + b"Content-Length: -5\r\n\r\n", 400, None),
        (
            b"POST /v1/match HTTP/1.1\r\n" + _HOST + b"Content-Length: 2\r\nContent-Length: 3"
            b"\r\n\r\n{}",
            400,
            "bad_request",
        ),
        (b"POST /v1/match HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding: gzip\r\n\r\n", 400, None),
        (
            b"POST /v1/match HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding: bogus\r\n\r\n",
            501,
            "not_implemented",
        ),
        (
            b"POST /v1/match HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding: chunked\r\n\r\n"
            b"2\r\n{}\r\n0\r\n\r\n",
            411,
            "length_required",
        ),
        (b"HELLO\r\n\r\n", 400, "bad_request"),
        (b"GET / HTTP/1.1\r\n" + _HOST + b"X-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, None),
        (b"GET / HTTP/1.1\r\n" + _HOST + b"X-Pad: x\r\n" * 7000, 431, None),  # over 64 KiB
        (b"GET / HTTP/1.1\r\n" + _HOST + b"Expect: teapot\r\n\r\n", 417, "expectation_failed"),
        (b"GET /nowhere HTTP/1.1\r\n" + _HOST + b"\r\n", 404, "not_found"),
    ],
    ids=[
        "long-url",
        "endless-url",
        "content-length-not-a-number",
        "content-length-negative",
        "content-length-twice",
        "transfer-encoding-not-chunked",
        "transfer-encoding-unknown",
        "chunked",
        "garbage-request-line",
        "header-field-too-long",
        "header-too-long",
        "expect-unknown",
        "unknown-route",
    ],
)
def test_errors_gunicorn_writes_are_json(hardened, request_bytes, status, code):
    error = _json_error(_raw(hardened.port, request_bytes), status)
    if code is not None:
        assert error["code"] == code, error


def test_expect_100_continue_is_answered_by_the_worker(hardened):
    body = json.dumps({k: b64(v[1]) for k, v in _match_files().items()})
    with _connect(hardened.port) as sock:
        sock.sendall(
            b"POST /v1/match HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body.encode())
        status, _, answer = _read_response(sock)
    assert status == 200, answer[:300]
    assert json.loads(answer)["instances"]


# -- the request time limit ----------------------------------------------------------------


@pytest.mark.slow
def test_a_request_past_the_time_limit_gets_a_json_500(tmp_path):
    """One worker, a 0.5 s limit, a scene that takes seconds: a JSON 500 ``timeout``, then
    a fresh worker takes over."""
    args = ["--no-catalog", "--workers", "1", "--threads", "2", "--recipe", "siamfc_pixels"]
    with serving(tmp_path, [*args, "--request-timeout", "0.5"]) as server:
        first = server.worker_pids()
        scene = paste(clutter_scene(600, 900, seed=2), product_image("coffee"), (10, 10, 210, 210))
        scene = cv2.resize(scene, (3600, 2400), interpolation=cv2.INTER_NEAREST)
        files = {**_match_files(), "scene": ("s.png", png_bytes(scene))}
        started = time.monotonic()
        response = requests.post(server.base + "/v1/match", files=files, timeout=60)
        assert time.monotonic() - started < 10
        assert response.status_code == 500
        assert response.json() == {
            "error": {
                "code": "timeout",
                "message": "the request took longer than 0.5 s; this worker is replaced",
            }
        }
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                pids = server.worker_pids()
                if pids and pids != first and _healthz_seconds(server.base) < HEALTHZ_BOUND:
                    break
            except (requests.RequestException, AssertionError, OSError):
                pass
            time.sleep(0.5)
        else:
            pytest.fail("no fresh worker after the timeout")
        # The fresh worker serves (readiness, not a match: on a loaded machine even a small
        # match may pass this test's 0.5 s limit).
        ready = requests.get(server.base + "/readyz", timeout=60)
        assert ready.status_code == 200, ready.text
    log = server.log.read_text()
    assert "request timeout" in log and "exited with code 1" in log


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


def test_fuzz_every_route(hardened):
    """Random image sizes and aspect ratios, JSON shapes and boxes at every route, from two
    clients at once, seeded and bounded in time."""
    rng = random.Random(FUZZ_SEED)
    cases = []
    ids = ["synth-001", "synth-002"]
    for _ in range(FUZZ_CASES):
        method, path, kwargs = _fuzz_request(rng, ids)
        sent = kwargs.get("data", kwargs.get("json"))
        if path == "/v1/catalog" and isinstance(sent, dict) and isinstance(sent.get("id"), str):
            ids.append(sent["id"])
        cases.append((method, path, kwargs))
    workers = hardened.worker_pids()
    start_rss = {pid: _rss(pid) for pid in workers}
    stop = threading.Event()
    healthz: list[float] = []
    peak_rss = dict.fromkeys(workers, 0)

    def monitor() -> None:
        while not stop.is_set():
            healthz.append(_healthz_seconds(hardened.base))
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
            response = session.request(method, hardened.base + path, timeout=60, **kwargs)
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
    assert hardened.worker_pids() == workers  # no worker died or was replaced
