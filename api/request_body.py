"""Reading a request's body, multipart or JSON, for the request validation.

A request body is either ``multipart/form-data`` (images as file parts, other values as
text fields) or ``application/json`` (images as base64 strings, optionally as
``data:image/...;base64,`` URLs; numbers as numbers or strings). JSON is parsed here
only, by :func:`parse_json`, which refuses nesting deeper than :data:`MAX_JSON_DEPTH` with a
400 (a body of 1,000 nested arrays must not reach the recursion limit of anything that
walks it later). :class:`Fields` hides the difference; :func:`require_bytes` and
:func:`decode_image` turn its image parts into arrays. Errors are siammatch's exceptions,
which the error handlers map to a 4xx JSON answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import numpy as np
from flask import Request

from api.errors import (
    InvalidBase64Error,
    MalformedJSONError,
    MissingFieldError,
    RequestError,
    UnsupportedMediaTypeError,
)
from index.products import MAX_METADATA_DEPTH, json_depth
from matcher.errors import InvalidImageError
from matcher.images import ImageLimits, load_image

_DATA_URL = re.compile(r"\Adata:[\w/+.-]*;base64,", re.IGNORECASE)

#: Deepest nesting of arrays and objects accepted in a JSON body (the body itself is 1).
MAX_JSON_DEPTH = MAX_METADATA_DEPTH + 1


def parse_json(data: bytes | str, what: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON text, refusing malformed and too deeply nested documents.

    Args:
        data: the text (bytes in UTF-8, -16 or -32, or str).
        what: what the text is, for messages.
        max_depth: deepest accepted nesting of arrays and objects.

    Raises:
        MalformedJSONError: not JSON, or nested deeper than ``max_depth``.
    """
    too_deep = f"{what} is nested more than {max_depth} levels deep"
    try:
        value = json.loads(data)
    except RecursionError:  # the C decoder stops at the interpreter's recursion limit
        raise MalformedJSONError(too_deep) from None
    except json.JSONDecodeError as exc:
        raise MalformedJSONError(f"{what} is not valid JSON: {exc.msg}") from None
    except ValueError:  # undecodable bytes
        raise MalformedJSONError(f"{what} is not valid JSON text") from None
    if json_depth(value, limit=max_depth) > max_depth:
        raise MalformedJSONError(too_deep)
    return value


class Fields:
    """Uniform read access to a request's values, multipart or JSON.

    Args:
        request: the Flask request.

    Raises:
        MalformedJSONError: a JSON body that does not parse or is not an object.
        UnsupportedMediaTypeError: neither multipart/form nor JSON.
    """

    def __init__(self, request: Request) -> None:
        self._json: dict[str, Any] | None = None
        mimetype = request.mimetype
        if mimetype == "application/json" or mimetype.endswith("+json"):
            body = parse_json(request.get_data(cache=True), "the request body")
            if not isinstance(body, dict):
                raise MalformedJSONError("the JSON body must be an object")
            self._json = body
        elif mimetype in ("multipart/form-data", "application/x-www-form-urlencoded") or (
            not mimetype and not request.content_length
        ):  # no body at all reads as an empty form: its fields are missing
            self._form = request.form
            self._files = request.files
        else:
            raise UnsupportedMediaTypeError(
                f"send multipart/form-data or application/json, not {mimetype or 'no body'!r}"
            )

    @property
    def is_json(self) -> bool:
        """Whether the body is JSON."""
        return self._json is not None

    def value(self, name: str) -> Any:
        """A non-file value: a JSON value, or the text of a form field; ``None`` if absent.

        Empty form fields count as absent.
        """
        if self._json is not None:
            return self._json.get(name)
        text = self._form.get(name)
        return text if text not in (None, "") else None

    def has(self, name: str) -> bool:
        """Whether the request carries ``name`` at all (as a file, field or key)."""
        if self._json is not None:
            return self._json.get(name) is not None
        return name in self._files or self.value(name) is not None

    def image_bytes(self, name: str) -> bytes | None:
        """The encoded bytes of image ``name``; ``None`` if absent.

        Raises:
            InvalidImageError: the part or string is present but empty.
            InvalidBase64Error: a JSON string that is not base64.
        """
        if self._json is not None:
            raw = self._json.get(name)
            if raw is None:
                return None
            if not isinstance(raw, str):
                raise InvalidBase64Error(f"{name!r} must be a base64 string")
            data = _b64decode(raw, name)
        else:
            part = self._files.get(name)
            if part is None:
                if self.value(name) is not None:
                    raise RequestError(f"{name!r} must be sent as a file part, not a text field")
                return None
            data = part.read()
        if not data:
            raise InvalidImageError(f"image {name!r} is empty")
        return data


def _b64decode(text: str, name: str) -> bytes:
    text = _DATA_URL.sub("", text.strip(), count=1)
    text = "".join(text.split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64Error(f"{name!r} is not valid base64") from None


def require_bytes(fields: Fields, name: str) -> bytes:
    """The encoded bytes of required image ``name`` (not yet decoded).

    Raises:
        MissingFieldError: absent.
        InvalidImageError: empty.
        InvalidBase64Error: not base64 (JSON bodies).
    """
    data = fields.image_bytes(name)
    if data is None:
        kind = "a base64 string" if fields.is_json else "a file part"
        raise MissingFieldError(f"{name!r} is required ({kind})")
    return data


def decode_image(data: bytes, *, limits: ImageLimits) -> np.ndarray:
    """Decode encoded image bytes to ``(H, W, 3)`` uint8 RGB.

    Raises:
        InvalidImageError: corrupt or not an image.
        ImageTooLargeError: over ``limits``' pixels or side.
        ImageTooThinError: over ``limits``' aspect ratio.
    """
    return load_image(data, limits=limits)
