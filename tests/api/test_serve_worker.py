"""Issue 18 through the real ``siammatch serve`` (gunicorn, ``api.gunicorn_worker``): slow
and idle clients cannot starve the workers, gunicorn's own errors are JSON, and a request
past its time limit gets a JSON 500. (The seeded fuzz over every route: ``test_serve_fuzz``.)"""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import pytest
import requests

from tests.api.http_helpers import b64, png_bytes, serving
from tests.api.serve_helpers import HEALTHZ_BOUND, READ_TIMEOUT, healthz_seconds, match_files
from tests.helpers import clutter_scene, paste, product_image

# The ``hardened`` server is a module fixture of tests/api/conftest.py.

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
            assert healthz_seconds(hardened.base) < HEALTHZ_BOUND
        with ThreadPoolExecutor(8) as pool:  # every thread of both workers is free
            assert max(pool.map(lambda _: healthz_seconds(hardened.base), range(8))) < 2.0
        match = requests.post(hardened.base + "/v1/match", files=match_files(), timeout=60)
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
    assert healthz_seconds(hardened.base) < HEALTHZ_BOUND


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
    body = json.dumps({k: b64(v[1]) for k, v in match_files().items()})
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
        files = {**match_files(), "scene": ("s.png", png_bytes(scene))}
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
                if pids and pids != first and healthz_seconds(server.base) < HEALTHZ_BOUND:
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
    # The old worker exits with status 1 when the abandoned request still runs as it stops
    # (api/gunicorn_worker.py), or gracefully when that request finished first: which one
    # depends on the machine's load; the replacement (checked above) does not.
    assert "request timeout" in log
