"""The gunicorn worker of ``siammatch serve``: threads that never wait on a slow client.

gunicorn's ``gthread`` worker accepts connections in its main loop and hands each one to a
thread, which then blocks until the client has sent its request: a client that sends half
a header and stops holds that thread for good (with sync workers, the whole worker), so a
few such sockets starve the service. :class:`ThreadWorker` changes three things.

- **Requests are read before a thread takes them.** The main loop (a ``selectors`` poll,
  no thread) reads each connection's bytes as they arrive until it holds the complete
  header and the whole body its ``Content-Length`` declares (answering an ``Expect:
  100-continue`` itself); only then does a thread parse and serve the request, from
  memory. A client that takes longer than :data:`READ_TIMEOUT_ENV` seconds (default
  :data:`DEFAULT_READ_TIMEOUT`) to send its request is answered ``408`` and closed; a
  header over :data:`MAX_HEADER_BYTES` is answered ``431`` (``414`` when not even its
  request line ends there); a chunked body, whose end only reading it would tell, is
  refused with ``411`` (send a ``Content-Length``). A body over the app's
  ``MAX_CONTENT_LENGTH`` is not read: the application answers ``413`` from the header.
  Slow and idle clients cost a socket and the bytes they sent, never a thread;
  kept-alive connections idle for gunicorn's ``keepalive`` seconds are closed.
- **gunicorn's own errors are JSON.** The responses gunicorn writes itself (a malformed
  request line or header, a long URL, a bad ``Content-Length`` or ``Transfer-Encoding``, a
  failure outside the application) use the service's error shape
  ``{"error": {"code", "message"}}`` instead of an HTML page: the worker replaces
  ``gunicorn.util.write_error``, in its own process, with
  :func:`api.gunicorn_errors.write_json_error`.
- **Requests have a time limit.** A request still running after
  :data:`REQUEST_TIMEOUT_ENV` seconds (default: gunicorn's ``timeout``) is answered
  ``500`` with the code ``timeout``, and the worker stops taking connections, finishes
  its other requests and exits, so that gunicorn starts a fresh one (a thread cannot be
  stopped; the process can). The main loop keeps gunicorn's heartbeat while threads
  compute, so gunicorn's ``timeout`` itself only catches a worker that hangs as a whole
  (or boots for longer than it).

TLS connections keep gthread's own reading (the bytes must go through the TLS layer
first). How much of a request to read is decided from its header by
:mod:`api.request_framing`. This module is imported by the gunicorn master: it imports
nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.workers import gthread

from api.gunicorn_errors import error_response, write_json_error
from api.request_framing import read_plan, without_expect

#: Environment variable: seconds a client has to send a whole request (header and body).
READ_TIMEOUT_ENV = "SIAMMATCH_READ_TIMEOUT"
#: Environment variable: seconds a request may run before it is answered ``500 timeout``.
REQUEST_TIMEOUT_ENV = "SIAMMATCH_REQUEST_TIMEOUT"
DEFAULT_READ_TIMEOUT = 30.0
#: Largest request header read; beyond it the client is answered 431 (or 414).
MAX_HEADER_BYTES = 64 * 1024
#: Bodies buffered before a thread takes the request when the app does not say otherwise.
DEFAULT_MAX_BODY = 16 * 1024 * 1024
_RECV_SIZE = 256 * 1024


def _send_now(sock: socket.socket, data: bytes) -> None:
    """Best-effort write that never blocks and never changes the socket's mode (another
    thread may be using it)."""
    with contextlib.suppress(OSError):
        sock.send(data, socket.MSG_DONTWAIT)


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    value = float(text)
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {text!r}")
    return value


@dataclass(eq=False)
class _Reading:
    """A connection whose request the main loop is still reading."""

    deadline: float
    data: bytearray = field(default_factory=bytearray)
    continued: bool = False  # ``100 Continue`` sent


@dataclass(eq=False)
class _Running:
    """A request a thread is serving. ``finished``: the application returned (its answer
    goes out); ``answered``: the watchdog answered ``timeout`` instead."""

    started: float
    finished: bool = False
    answered: bool = False


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's ``gthread`` worker, reading requests in its main loop (see the module
    docstring). Select it with ``worker_class = "api.gunicorn_worker.ThreadWorker"``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = _seconds(READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT)
        self.request_timeout = _seconds(REQUEST_TIMEOUT_ENV, float(self.cfg.timeout or 0) or 1e9)
        self.max_body = DEFAULT_MAX_BODY
        self.reading: dict[Any, _Reading] = {}
        self.running: dict[Any, _Running] = {}
        self.running_lock = threading.Lock()
        self.current = threading.local()
        self.abandoned = 0
        self.wsgi_app: Any = None

    # -- process ---------------------------------------------------------------------------

    def init_process(self) -> None:
        util.write_error = write_json_error  # this worker process only
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi_app = self.wsgi  # the Flask application (``wsgi`` becomes its guard)
        config = getattr(self.wsgi_app, "config", None)
        if config is not None and config.get("MAX_CONTENT_LENGTH"):
            self.max_body = int(config["MAX_CONTENT_LENGTH"])
        self.wsgi = partial(self._guarded, self.wsgi_app)

    def run(self) -> None:
        super().run()
        if self.abandoned:
            # Threads past the time limit still compute, and the interpreter would wait for
            # them at exit: end the process now (the catalog's writes are atomic).
            self.log.error("worker exits with %d timed-out request(s) running", self.abandoned)
            os._exit(1)

    # -- reading requests in the main loop -------------------------------------------------

    def enqueue_req(self, conn: Any) -> None:
        """Every connection with a request to come passes here (new, kept alive, or with
        bytes left over from the previous request): read it first, then give it a thread."""
        if self.cfg.is_ssl or getattr(conn, "siammatch_request", None) is not None:
            super().enqueue_req(conn)
            return
        state = _Reading(deadline=time.monotonic() + self.read_timeout)
        if conn.parser is not None:
            state.data += conn.parser.unreader.take_buffered()
        self.reading[conn] = state
        conn.sock.setblocking(False)
        if not self._advance(conn, state):
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _readable(self, conn: Any, _sock: Any) -> None:
        state = self.reading.get(conn)
        if state is None:
            return
        try:
            chunk = conn.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away
            self._drop(conn)
            return
        state.data += chunk
        self._advance(conn, state)

    def _advance(self, conn: Any, state: _Reading) -> bool:
        """Dispatch or refuse the request if ``state`` holds enough; whether it did."""
        data = state.data
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) < MAX_HEADER_BYTES:
                return False
            if b"\r\n" not in data:
                self._refuse(conn, 414, "the request line is too long")
            else:
                self._refuse(
                    conn, 431, f"the request header is longer than {MAX_HEADER_BYTES} bytes"
                )
            return True
        head = bytes(data[:end])
        plan = read_plan(head, self.max_body)
        if plan.chunked:
            self._refuse(
                conn,
                411,
                "send the request body with a Content-Length (chunked bodies are not accepted)",
            )
            return True
        if len(data) < end + 4 + plan.body:
            if plan.expect_continue and not state.continued:
                state.continued = True
                _send_now(conn.sock, b"HTTP/1.1 100 Continue\r\n\r\n")
            return False
        if plan.expect_continue:
            data = bytearray(without_expect(head)) + data[end:]
        del self.reading[conn]
        self._unregister(conn)
        conn.siammatch_request = bytes(data)
        super().enqueue_req(conn)
        return True

    def _unregister(self, conn: Any) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _drop(self, conn: Any) -> None:
        self.reading.pop(conn, None)
        self._unregister(conn)
        self.nr_conns -= 1
        conn.close()

    def _refuse(self, conn: Any, status: int, message: str) -> None:
        _send_now(conn.sock, error_response(status, message))
        self._drop(conn)

    def murder_pending(self) -> None:
        """Also, once a second from the main loop: close clients past the read timeout
        (idle ones at once when stopping) and answer requests past the time limit."""
        super().murder_pending()
        now = time.monotonic()
        for conn, state in list(self.reading.items()):
            if state.deadline <= now and state.data:
                self._refuse(
                    conn, 408, f"the request was not received within {self.read_timeout:g} s"
                )
            elif state.deadline <= now or (not self.alive and not state.data):
                self._drop(conn)
        self._answer_late(now)

    # -- serving ---------------------------------------------------------------------------

    def handle(self, conn: Any) -> Any:
        """A thread serves the connection's request from the bytes the main loop read."""
        data = getattr(conn, "siammatch_request", None)
        if data is not None:
            conn.siammatch_request = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(data)
            conn.data_ready = True
        with self.running_lock:
            self.running[conn] = _Running(started=time.monotonic())
        self.current.conn = conn
        try:
            return super().handle(conn)
        finally:
            self.current.conn = None
            with self.running_lock:
                self.running.pop(conn, None)

    def _guarded(self, app: Any, environ: dict, start_response: Any) -> Any:
        """The application, whose answer is dropped when the watchdog already answered."""
        result = app(environ, start_response)
        conn = getattr(self.current, "conn", None)
        with self.running_lock:
            state = self.running.get(conn)
            if state is None or not state.answered:
                if state is not None:
                    state.finished = True
                return result
        if hasattr(result, "close"):
            result.close()
        return []  # the socket is shut: gunicorn's write of the headers fails and is ignored

    def _answer_late(self, now: float) -> None:
        with self.running_lock:
            late = [
                conn
                for conn, state in self.running.items()
                if not (state.finished or state.answered)
                and now - state.started > self.request_timeout
            ]
            for conn in late:
                self.running[conn].answered = True
        for conn in late:
            message = (
                f"the request took longer than {self.request_timeout:g} s; this worker is replaced"
            )
            _send_now(conn.sock, error_response(500, message, code="timeout"))
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
            conn.siammatch_timed_out = True
            self.abandoned += 1
            self.nr_conns -= 1  # not waited for when stopping
            self.log.error(
                "request timeout (pid %s): answered 500 after %g s", self.pid, self.request_timeout
            )
        if late and self.alive:
            self.alive = False  # finish the other requests, then exit (see run)

    def finish_request(self, conn: Any, fs: Any) -> None:
        if getattr(conn, "siammatch_timed_out", False):  # answered and counted already
            self.abandoned -= 1
            conn.close()
            return
        super().finish_request(conn, fs)
