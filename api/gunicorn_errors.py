"""The error responses the gunicorn worker writes itself, as the service's JSON errors.

:func:`error_response` builds a complete ``Connection: close`` HTTP/1.1 response carrying
``{"error": {"code", "message"}}`` (the shape of the application's own errors), with the
status's standard reason phrase; :func:`write_json_error` replaces
``gunicorn.util.write_error`` in the worker process (:class:`api.gunicorn_worker.ThreadWorker`)
so that gunicorn's own answers (a malformed request line or header, a long URL, a bad
``Content-Length`` or ``Transfer-Encoding``, a failure outside the application) are JSON
instead of an HTML page. The gunicorn master imports this module: it imports nothing heavy.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from gunicorn import util

#: Reason phrases (RFC 9110's, whatever the Python version's ``HTTPStatus`` says) of the
#: statuses the worker and gunicorn answer themselves.
_PHRASES = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    411: "Length Required",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}


def _phrase(status: int) -> str:
    if status in _PHRASES:
        return _PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _code(reason: str) -> str:
    """``"URI Too Long"`` -> ``"uri_too_long"`` (the way Flask's HTTP errors get theirs)."""
    words = "".join(ch if ch.isalnum() else " " for ch in reason.lower()).split()
    return "_".join(words) or "http_error"


def error_response(status: int, message: str, *, code: str | None = None) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response carrying a JSON error.

    Args:
        status: HTTP status (its reason phrase is the standard one).
        message: the human-readable message.
        code: the error's machine-readable code; by default the reason phrase in snake
            case (``414`` -> ``uri_too_long``), the way Flask's HTTP errors get theirs.
    """
    reason = _phrase(status)
    error = {"code": code or _code(reason), "message": message}
    body = json.dumps({"error": error}).encode("ascii")
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for ``gunicorn.util.write_error``: the error as the service's JSON shape.

    The reason phrase is the status's standard one (gunicorn labels its 501 "Bad
    Request"). A 500 says no more than the application's own 500 does (gunicorn logs the
    cause).
    """
    if status_int == 500:
        response = error_response(500, "internal server error", code="internal_error")
    else:
        response = error_response(status_int, " ".join(str(mesg).split()) or _phrase(status_int))
    util.write_nonblock(sock, response)
