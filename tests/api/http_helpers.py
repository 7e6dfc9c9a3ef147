"""Small helpers of the HTTP service tests: encoding images for requests, and running the
real ``siammatch serve`` (gunicorn) on a free loopback port."""

from __future__ import annotations

import base64
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of an ``(H, W, 3)`` uint8 RGB array."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(data: bytes, name: str = "image.png") -> tuple[io.BytesIO, str]:
    """A multipart file part for the Flask test client."""
    return (io.BytesIO(data), name)


def b64(data: bytes) -> str:
    """Base64 text of ``data``, as JSON bodies carry images."""
    return base64.b64encode(data).decode("ascii")


def decode_png(data: bytes) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of PNG bytes."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# -- a real server -------------------------------------------------------------------------


def free_port() -> int:
    """A currently free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 240.0) -> dict:
    """Poll ``/readyz`` until it answers 200; its JSON."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"siammatch serve exited with status {proc.returncode}")
        try:
            response = requests.get(base + "/readyz", timeout=5)
            if response.status_code == 200:
                return response.json()
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail("siammatch serve did not become ready")


@dataclass(frozen=True)
class Server:
    """A running ``siammatch serve``.

    Attributes:
        base: ``http://127.0.0.1:<port>``.
        port: its port.
        proc: the process (gunicorn's master: serve execs it).
        ready: the first ``/readyz`` answer.
        log: the file its stdout and stderr go to.
    """

    base: str
    port: int
    proc: subprocess.Popen
    ready: dict
    log: Path

    def worker_pids(self) -> list[int]:
        """The gunicorn workers' process ids (the master's children)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()]


@contextmanager
def serving(
    folder: Path, args: Sequence[str], *, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Run ``python -m api.cli_serve --port <free> *args`` until the block ends.

    The server is stopped with SIGTERM (gunicorn's graceful stop); it must exit with
    status 0 and log no traceback.

    Args:
        folder: where the log (and whatever ``args`` point there) goes.
        args: ``siammatch serve`` options (not ``--port``).
        env: extra environment variables.
    """
    port = free_port()
    environ = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    cmd = [sys.executable, "-m", "api.cli_serve", "--port", str(port), *args]
    log_path = folder / f"server-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_ready(base, proc)
        yield Server(base=base, port=port, proc=proc, ready=ready, log=log_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
        log.close()
        text = log_path.read_text()
        assert status == 0, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        assert "Control socket listening" not in text  # disabled in api.gunicorn_conf
