"""The one place numbers from users are parsed and range-checked.

Recipes, baseline parameters, embedder specs, the service's settings and the library's
arguments all take integers and floats from people (YAML, ``key=value`` overrides,
environment variables, function arguments). They convert them with :func:`as_int` /
:func:`as_float` and check them with :func:`check_range` / :func:`check_int`, so every
out-of-range value gets the same message, naming the key and the allowed range::

    inference.match.scale_step must be in (1.0, 10.0], got 1.0

The error type is the caller's: :class:`~matcher.errors.ConfigError` for configuration,
:class:`~matcher.errors.InvalidArgumentError` for a function's arguments.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from matcher.errors import ConfigError, InvalidArgumentError


def as_int(key: str, value: Any, *, error: type[Exception] = ConfigError) -> int:
    """``value`` as an ``int`` if it is an integer (numpy integers too, booleans not).

    Raises:
        error: anything else, naming ``key``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{key} must be an integer, got {value!r}")
    return int(value)


def as_float(key: str, value: Any, *, error: type[Exception] = ConfigError) -> float:
    """``value`` as a finite ``float`` if it is a real number (booleans not).

    Raises:
        error: anything else (NaN and infinities included), naming ``key``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{key} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise error(f"{key} must be a finite number, got {value!r}")
    return out


def check_range(
    key: str,
    value: float,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    error: type[Exception] = ConfigError,
) -> None:
    """Raise unless ``low <= value <= high`` (``low < value`` with ``open_low``).

    NaN fails every comparison, so it is refused too.

    Raises:
        error: ``"<key> must be in [low, high], got <value>"``.
    """
    above = value > low if open_low else value >= low
    if not (above and value <= high):
        bracket = "(" if open_low else "["
        raise error(f"{key} must be in {bracket}{low}, {high}], got {value}")


def check_int(
    key: str, value: Any, low: int, high: int, *, error: type[Exception] = InvalidArgumentError
) -> int:
    """:func:`as_int` then :func:`check_range`; returns the ``int``."""
    out = as_int(key, value, error=error)
    check_range(key, out, low, high, error=error)
    return out


def check_float(
    key: str,
    value: Any,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    error: type[Exception] = InvalidArgumentError,
) -> float:
    """:func:`as_float` then :func:`check_range`; returns the ``float``."""
    out = as_float(key, value, error=error)
    check_range(key, out, low, high, open_low=open_low, error=error)
    return out


#: ``(field, low, high, open_low)``: the field's value must lie in ``[low, high]`` (``(low,
#: high]`` when ``open_low``); a field set to ``None`` is not checked.
Ranges = tuple[tuple[str, float, float, bool], ...]


def check_fields(config: Any, prefix: str, ranges: Ranges) -> None:
    """:func:`check_range` for every field of ``ranges`` of a config dataclass (keys
    ``prefix + field``, :class:`~matcher.errors.ConfigError`)."""
    for name, low, high, open_low in ranges:
        value = getattr(config, name)
        if value is not None:
            check_range(prefix + name, value, low, high, open_low=open_low)
