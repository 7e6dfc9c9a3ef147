"""JSON errors for the HTTP service: the status table and the handlers.

Every error leaves the service as ``{"error": {"code": "...", "message": "..."}}``. The
library's exception classes (:mod:`matcher.errors`) and the few request-level ones defined
here map to a status through :data:`STATUS`, looked up along the exception's MRO, so a
subclass added later inherits its parent's status. Werkzeug's HTTP errors (404, 405, 413
...) keep their status and get a JSON body. Anything else is a bug: a 500 whose traceback
goes to the log and never to the client. :func:`register_error_handlers` installs all of
this once, from the application factory.
"""

from __future__ import annotations

import logging
import re

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from matcher.errors import (
    CatalogError,
    CheckpointError,
    ConfigError,
    DuplicateProductError,
    ImageTooLargeError,
    ImageTooThinError,
    InvalidArgumentError,
    InvalidBoxError,
    InvalidImageError,
    ProductNotFoundError,
    SiammatchError,
    UnknownComponentError,
)

logger = logging.getLogger(__name__)


class RequestError(SiammatchError, ValueError):
    """A request is malformed outside what the library checks (fields, encodings)."""

    code = "bad_request"


class MissingFieldError(RequestError):
    """A required form field, file part or JSON key is absent."""

    code = "missing_field"


class MalformedJSONError(RequestError):
    """The body claims to be JSON but does not parse, or a JSON field is not an object."""

    code = "malformed_json"


class InvalidBase64Error(RequestError):
    """An image sent in a JSON body is not valid base64."""

    code = "invalid_base64"


class UnsupportedMediaTypeError(RequestError):
    """The body is neither ``multipart/form-data`` nor ``application/json``."""

    code = "unsupported_media_type"


class AuthenticationError(SiammatchError):
    """The service has an API key and the request did not present it."""

    code = "unauthorized"


class CatalogUnavailableError(SiammatchError):
    """A catalog route was called on a service started without a catalog."""

    code = "catalog_unavailable"


#: HTTP status per exception class; the most specific class in an exception's MRO wins.
STATUS: dict[type[BaseException], int] = {
    SiammatchError: 400,
    InvalidImageError: 400,
    ImageTooLargeError: 413,
    ImageTooThinError: 400,
    InvalidBoxError: 400,
    InvalidArgumentError: 400,
    UnknownComponentError: 400,
    RequestError: 400,
    UnsupportedMediaTypeError: 415,
    AuthenticationError: 401,
    CatalogUnavailableError: 503,
    # Server-side states, not client mistakes: logged with their traceback.
    ConfigError: 500,
    CheckpointError: 500,
    CatalogError: 500,
    ProductNotFoundError: 404,
    DuplicateProductError: 409,
}


def status_for(exc: BaseException) -> int:
    """The HTTP status of a library or request exception (500 when unmapped)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(status: int, code: str, message: str) -> Response:
    """A JSON error response ``{"error": {"code", "message"}}`` with ``status``."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _code_for_http(exc: HTTPException) -> str:
    name = exc.name or "http_error"
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def handle_siammatch_error(exc: SiammatchError) -> Response:
    """Map a library or request exception to its JSON error."""
    status = status_for(exc)
    if status >= 500:
        logger.error("server-side %s", type(exc).__name__, exc_info=exc)
        return error_response(status, exc.code, f"the service failed ({exc.code})")
    message = " ".join(str(exc).split()) or type(exc).__name__
    response = error_response(status, exc.code, message)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="siammatch"'
    return response


def handle_http_exception(exc: HTTPException) -> Response:
    """Werkzeug's HTTP errors (404, 405, 413, ...) with a JSON body instead of HTML."""
    status = exc.code or 500
    message = exc.description or exc.name or "HTTP error"
    response = error_response(status, _code_for_http(exc), message)
    for key, value in exc.get_headers():
        if key.lower() != "content-type":
            response.headers[key] = value
    return response


def handle_unexpected(exc: Exception) -> Response:
    """Any other exception: log the traceback, answer a bare 500."""
    logger.error("unhandled exception", exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on ``app`` (called once, by the application factory)."""
    app.register_error_handler(SiammatchError, handle_siammatch_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
