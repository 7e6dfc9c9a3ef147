"""The HTTP service's application factory.

``create_app(config)`` builds a Flask application: configuration (:mod:`api.settings`
lists every key and its environment variable), logging, the JSON error handlers
(:mod:`api.errors`), the request metrics, the optional API key on ``/v1``, the
``X-Content-Type-Options: nosniff`` header on every response, one blueprint per
resource (:mod:`api.routes`), and finally :func:`init_app`, which loads the matchers and
opens the catalog once per process and keeps them in ``app.extensions["siammatch"]``.

Under gunicorn every worker calls the factory itself after the fork
(``gunicorn "api.app:create_app()"``, never ``--preload``): torch and faiss must not have
run in the process that forks. ``siammatch serve`` (:mod:`api.cli_serve`) starts it so.
Tests pass a config dict, including ready-made ``MATCHER`` / ``CATALOG`` objects.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, request

import matcher
from api.errors import AuthenticationError, register_error_handlers
from api.routes import catalog, health, match, metrics, openapi, search, web
from api.settings import resolve_config
from api.state import EXTENSION, Services
from api.validation import Limits
from matcher.images import ImageLimits

logger = logging.getLogger(__name__)

BLUEPRINTS = (
    match.bp,
    catalog.bp,
    search.bp,
    health.bp,
    metrics.bp,
    openapi.bp,
    web.bp,
)
LOGGERS = ("api", "matcher", "index")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the siammatch HTTP application.

    Args:
        config: configuration keys (see :mod:`api.settings`); they take precedence over
            the ``SIAMMATCH_*`` environment variables and the defaults.

    Returns:
        The ready application, models loaded.

    Raises:
        ConfigError: an invalid configuration value, or a recipe that needs weights.
        UnknownComponentError: an unknown recipe.
        CheckpointError: an unusable weights file.
        CatalogError: the catalog cannot be opened.
    """
    settings = resolve_config(config)
    configure_logging(settings["LOG_LEVEL"])
    app = Flask(__name__, static_folder=None)
    app.config.update(settings)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    register_error_handlers(app)
    metrics.init_app(app)  # first: it times every request, refused ones included
    app.before_request(require_api_key)
    app.after_request(set_security_headers)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    init_app(app)
    return app


def configure_logging(level: str) -> None:
    """Send log records to stderr (unless something already handles them) at ``level``."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    for name in LOGGERS:
        logging.getLogger(name).setLevel(level.upper())


def set_security_headers(response: Response) -> Response:
    """``X-Content-Type-Options: nosniff`` on every response, errors included: browsers
    must take JSON, PNG and the metrics text for what they are declared to be."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def require_api_key() -> None:
    """Refuse ``/v1`` requests without the configured API key (no-op without one).

    Raises:
        AuthenticationError: the key is missing or wrong.
    """
    expected = current_app.config.get("API_KEY")
    if not expected or not (request.path == "/v1" or request.path.startswith("/v1/")):
        return
    given = request.headers.get("X-API-Key")
    if given is None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = token.strip()
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthenticationError(
            "this service needs an API key: send it in the X-API-Key header or as "
            "'Authorization: Bearer <key>'"
        )


def init_app(app: Flask) -> None:
    """Load the matchers and open the catalog; store them in ``app.extensions``.

    Args:
        app: an application whose config :func:`create_app` resolved.
    """
    config = app.config
    matchers, default = load_matchers(
        recipe=config["RECIPE"],
        weights=config["WEIGHTS"],
        extra=config["EXTRA_RECIPES"],
        device=config["DEVICE"],
        injected=config["MATCHER"],
        precision=config["PRECISION"],
    )
    config["RECIPE"] = default
    catalog = config["CATALOG"]
    if catalog is None and config["CATALOG_DIR"]:
        catalog = open_catalog(
            config["CATALOG_DIR"],
            matcher=matchers[default],
            create=config["CATALOG_CREATE"],
            index_cache=config["INDEX_CACHE"],
        )
    if catalog is not None and hasattr(catalog, "follow_hooks"):
        catalog.follow_hooks.append(app.extensions[metrics.EXTENSION].observe_replication)
    app.extensions[EXTENSION] = Services(
        matchers=matchers,
        default_recipe=default,
        catalog=catalog,
        limits=Limits(
            image=ImageLimits(
                max_pixels=config["MAX_PIXELS"],
                max_side=config["MAX_IMAGE_SIDE"],
                max_aspect=float(config["MAX_ASPECT_RATIO"]),
            ),
            max_instances=config["MAX_INSTANCES"],
            max_k=config["MAX_K"],
            max_page_size=config["MAX_PAGE_SIZE"],
        ),
        default_threshold=config["DEFAULT_THRESHOLD"],
        search_candidates=config["SEARCH_CANDIDATES"],
    )
    logger.info(
        "siammatch service ready (pid %d): recipes %s, catalog %s",
        os.getpid(),
        ", ".join(sorted(matchers)),
        getattr(catalog, "location", "given") if catalog is not None else "none",
    )


def load_matchers(
    *,
    recipe: str | None,
    weights: str | None,
    extra: Mapping[str, str | None],
    device: str,
    injected: Any | None = None,
    precision: str | None = None,
) -> tuple[dict[str, Any], str]:
    """The service's matchers by recipe name, and the default one's name.

    Args:
        recipe: default recipe (name or YAML path; ``None``: the one ``weights`` stores);
            ignored when ``injected`` is given.
        weights: its weights file, or ``None``.
        extra: further recipes a request may pick, with their weights.
        device: where the networks run.
        injected: a ready matcher to use as the default.
        precision: ``"fp32"`` or ``"bf16"`` for every loaded matcher (``None``: each
            recipe's ``inference.precision``).

    Raises:
        ConfigError: a recipe with trainable weights and no weights file.
    """
    if injected is not None:
        matchers = {injected.name: injected}
    else:
        loaded = _load_matcher(recipe, weights, device, precision)
        matchers = {loaded.name: loaded}
    default = next(iter(matchers))
    for name, extra_weights in extra.items():
        if name not in matchers:
            loaded = _load_matcher(name, extra_weights, device, precision)
            matchers[loaded.name] = loaded
    return matchers, default


def _load_matcher(
    recipe: str | None, weights: str | None, device: str, precision: str | None
) -> Any:
    return matcher.load_trained(
        recipe,
        weights,
        device=device,
        hint="give its weights file (WEIGHTS, or name=weights in EXTRA_RECIPES)",
        precision=precision,
    )


def open_catalog(
    path: str | os.PathLike,
    *,
    matcher: Any,
    create: bool,
    index_cache: str | os.PathLike | None = None,
) -> Any:
    """Open the catalog at ``path`` for the service, with a follower thread that keeps the
    worker's FAISS index caught up and trains it outside requests.

    Args:
        path: the catalog folder or ``postgresql://`` URL.
        matcher: the default matcher (verification, and the default embedder's backbone).
        create: create an empty catalog when ``path`` holds none.
        index_cache: folder of the FAISS caches of database catalogs.

    Raises:
        CatalogError: no catalog there (and ``create`` is false), or it is unusable.
    """
    from index.catalog import Catalog

    return Catalog(path, matcher=matcher, create=create, index_cache=index_cache, follow=True)
