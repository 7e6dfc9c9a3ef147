"""The service's configuration keys, their defaults and their environment variables.

:func:`resolve_config` merges, in increasing priority, :data:`DEFAULTS`, the
``SIAMMATCH_*`` environment variables of :data:`ENVIRONMENT` (how ``siammatch serve``
hands its options to gunicorn's workers) and the dict given to ``create_app``; then it
checks every value. The keys (``app.config``):

===================== ============================== =========================================
key                   environment variable           meaning
===================== ============================== =========================================
CATALOG_DIR           SIAMMATCH_CATALOG              catalog folder or ``postgresql://`` URL;
                                                     unset: no catalog routes
CATALOG_CREATE        SIAMMATCH_CATALOG_CREATE       create an empty catalog there if missing
INDEX_CACHE           SIAMMATCH_INDEX_CACHE          folder of this machine's FAISS caches of
                                                     database catalogs (var/index-cache)
RECIPE                SIAMMATCH_RECIPE               default recipe (api.defaults),
                                                     or the one a siammatch WEIGHTS file stores)
WEIGHTS               SIAMMATCH_WEIGHTS              weights file of ``RECIPE``
DEVICE                SIAMMATCH_DEVICE               ``cpu``, ``cuda`` or ``auto``
PRECISION             SIAMMATCH_PRECISION            ``fp32`` or ``bf16`` for every recipe's
                                                     networks (unset: each recipe's
                                                     ``inference.precision``)
EXTRA_RECIPES         SIAMMATCH_EXTRA_RECIPES        more recipes a request may pick:
                                                     ``{name: weights or None}``; in the
                                                     environment ``name[=weights],...``
MAX_CONTENT_LENGTH    SIAMMATCH_MAX_CONTENT_LENGTH   request body limit, bytes (413 beyond)
MAX_PIXELS            SIAMMATCH_MAX_PIXELS           pixel limit of any uploaded image (413)
MAX_IMAGE_SIDE        SIAMMATCH_MAX_IMAGE_SIDE       limit on either side of an image (413)
MAX_ASPECT_RATIO      SIAMMATCH_MAX_ASPECT_RATIO     limit on an image's longer side / shorter
                                                     side (400 ``image_too_thin``)
API_KEY               SIAMMATCH_API_KEY              if set, ``/v1`` needs ``X-API-Key`` or
                                                     ``Authorization: Bearer`` (401)
DEFAULT_THRESHOLD     SIAMMATCH_DEFAULT_THRESHOLD    score threshold when a request gives
                                                     none (unset: the recipe's own)
MAX_INSTANCES         SIAMMATCH_MAX_INSTANCES        cap on ``max_instances`` per request
MAX_K                 SIAMMATCH_MAX_K                cap on ``k`` of ``/v1/search``
SEARCH_CANDIDATES     SIAMMATCH_SEARCH_CANDIDATES    products retrieved before verification
MAX_PAGE_SIZE         SIAMMATCH_MAX_PAGE_SIZE        cap on ``limit`` of ``GET /v1/catalog``
LOG_LEVEL             SIAMMATCH_LOG_LEVEL            logging level of the service
===================== ============================== =========================================

Two more keys exist for tests and embedding, never read from the environment:
``MATCHER`` (a ready matcher object used for ``RECIPE`` instead of loading it) and
``CATALOG`` (a ready catalog object used instead of opening ``CATALOG_DIR``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from api.defaults import DEFAULT_RECIPE
from index.catalog import MAX_K, MAX_PAGE
from index.search import DEFAULT_CANDIDATES, MAX_CANDIDATES
from matcher.checks import check_float, check_int
from matcher.errors import ConfigError
from matcher.inference_config import PRECISIONS
from matcher.interface import MAX_INSTANCES_LIMIT

logger = logging.getLogger(__name__)

ENV_PREFIX = "SIAMMATCH_"


DEFAULTS: dict[str, Any] = {
    "CATALOG_DIR": None,
    "CATALOG_CREATE": False,
    "INDEX_CACHE": None,
    "RECIPE": None,  # None: the one WEIGHTS stores, else DEFAULT_RECIPE
    "WEIGHTS": None,
    "DEVICE": "cpu",
    "PRECISION": None,  # None: each recipe's inference.precision
    "EXTRA_RECIPES": {},
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    "MAX_PIXELS": 25_000_000,
    "MAX_IMAGE_SIDE": 12_000,
    "MAX_ASPECT_RATIO": 20.0,
    "API_KEY": None,
    "DEFAULT_THRESHOLD": None,
    "MAX_INSTANCES": 20,
    "MAX_K": 20,
    "SEARCH_CANDIDATES": DEFAULT_CANDIDATES,
    "MAX_PAGE_SIZE": 200,
    "LOG_LEVEL": "INFO",
    "MATCHER": None,
    "CATALOG": None,
}


def _text(value: str) -> str | None:
    value = value.strip()
    return value or None


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def _recipes(value: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, weights = item.partition("=")
        out[name.strip()] = weights.strip() or None
    return out


def _optional_float(value: str) -> float | None:
    return float(value) if value.strip() else None


#: config key -> (environment variable, parser of its text)
ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "CATALOG_DIR": ("SIAMMATCH_CATALOG", _text),
    "CATALOG_CREATE": ("SIAMMATCH_CATALOG_CREATE", _flag),
    "INDEX_CACHE": ("SIAMMATCH_INDEX_CACHE", _text),
    "RECIPE": ("SIAMMATCH_RECIPE", _text),
    "WEIGHTS": ("SIAMMATCH_WEIGHTS", _text),
    "DEVICE": ("SIAMMATCH_DEVICE", str.strip),
    "PRECISION": ("SIAMMATCH_PRECISION", _text),
    "EXTRA_RECIPES": ("SIAMMATCH_EXTRA_RECIPES", _recipes),
    "MAX_CONTENT_LENGTH": ("SIAMMATCH_MAX_CONTENT_LENGTH", int),
    "MAX_PIXELS": ("SIAMMATCH_MAX_PIXELS", int),
    "MAX_IMAGE_SIDE": ("SIAMMATCH_MAX_IMAGE_SIDE", int),
    "MAX_ASPECT_RATIO": ("SIAMMATCH_MAX_ASPECT_RATIO", float),
    "API_KEY": ("SIAMMATCH_API_KEY", _text),
    "DEFAULT_THRESHOLD": ("SIAMMATCH_DEFAULT_THRESHOLD", _optional_float),
    "MAX_INSTANCES": ("SIAMMATCH_MAX_INSTANCES", int),
    "MAX_K": ("SIAMMATCH_MAX_K", int),
    "SEARCH_CANDIDATES": ("SIAMMATCH_SEARCH_CANDIDATES", int),
    "MAX_PAGE_SIZE": ("SIAMMATCH_MAX_PAGE_SIZE", int),
    "LOG_LEVEL": ("SIAMMATCH_LOG_LEVEL", str.strip),
}


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The config keys set by ``SIAMMATCH_*`` variables in ``environ``.

    Raises:
        ConfigError: a variable's value does not parse.
    """
    out: dict[str, Any] = {}
    for key, (var, parse) in ENVIRONMENT.items():
        if var not in environ:
            continue
        try:
            out[key] = parse(environ[var])
        except ValueError as exc:
            raise ConfigError(f"environment variable {var}: {exc}") from None
    return out


def resolve_config(
    config: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Defaults, then the environment, then ``config``; checked.

    Args:
        config: keys given to ``create_app`` (any Flask key passes through unchecked).
        environ: the environment (default ``os.environ``).

    Returns:
        The full configuration.

    Raises:
        ConfigError: a value has the wrong type or range.
    """
    merged: dict[str, Any] = dict(DEFAULTS)
    merged.update(from_environment(os.environ if environ is None else environ))
    merged.update(config or {})
    if not merged["RECIPE"] and not merged["WEIGHTS"]:
        merged["RECIPE"] = DEFAULT_RECIPE  # with weights alone: the recipe they store
    _check(merged)
    return merged


#: Numeric settings and their ranges (``DEFAULT_THRESHOLD`` may also be ``None``).
RANGES: dict[str, tuple[type, float, float]] = {
    "MAX_CONTENT_LENGTH": (int, 1, 2**40),
    "MAX_PIXELS": (int, 1, 10**10),
    "MAX_IMAGE_SIDE": (int, 1, 10**6),
    "MAX_ASPECT_RATIO": (float, 1.0, 1e6),
    "DEFAULT_THRESHOLD": (float, 0.0, 1.0),
    "MAX_INSTANCES": (int, 1, MAX_INSTANCES_LIMIT),
    "MAX_K": (int, 1, MAX_K),
    "SEARCH_CANDIDATES": (int, 1, MAX_CANDIDATES),
    "MAX_PAGE_SIZE": (int, 1, MAX_PAGE),
}


def _check(config: dict[str, Any]) -> None:
    for key, (kind, low, high) in RANGES.items():
        value = config[key]
        if value is None and key == "DEFAULT_THRESHOLD":
            continue
        check = check_int if kind is int else check_float
        config[key] = check(f"config {key}", value, low, high, error=ConfigError)
    extra = config["EXTRA_RECIPES"]
    if isinstance(extra, list | tuple):
        config["EXTRA_RECIPES"] = extra = dict.fromkeys(extra)
    if not isinstance(extra, dict) or not all(isinstance(k, str) and k for k in extra):
        raise ConfigError(f"config EXTRA_RECIPES must map recipe names to weights, got {extra!r}")
    precision = config["PRECISION"]
    if precision is not None and precision not in PRECISIONS:
        raise ConfigError(
            f"config PRECISION must be one of {PRECISIONS} or unset, got {precision!r}"
        )
    key = config["API_KEY"]
    if key is not None and (not isinstance(key, str) or not key):
        raise ConfigError("config API_KEY must be a non-empty string or None")
    level = config["LOG_LEVEL"]
    if not isinstance(level, str) or not isinstance(logging.getLevelName(level.upper()), int):
        raise ConfigError(f"config LOG_LEVEL {level!r} is not a logging level")
