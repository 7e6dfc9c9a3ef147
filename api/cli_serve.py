"""``siammatch serve``: run the HTTP service under gunicorn.

The command checks its options and loads the matchers once (so a wrong recipe or weights
file is a one-line error, not a worker that fails to boot), creates the embedded default
catalog when the catalog folder holds none (:mod:`api.default_catalog`, once, under a file
lock), then *replaces itself* with ``python -m gunicorn -c python:api.gunicorn_conf ...
"api.app:create_app()"``. The exec matters: the gunicorn master starts as a fresh
interpreter that never imports torch or faiss, and without ``--preload`` every worker
builds the application after the fork (a faiss call in a forked child of a process that
already ran torch/faiss work can hang forever).

Workers are :class:`api.gunicorn_worker.ThreadWorker` (set in :mod:`api.gunicorn_conf`):
``--threads`` threads each, which only ever see complete requests, the main loop having
read them; ``--read-timeout`` bounds how long a client may take to send one and
``--request-timeout`` how long one may run.

Settings reach the workers as environment variables (:mod:`api.settings`):
``SIAMMATCH_CATALOG``, ``SIAMMATCH_RECIPE``, ``SIAMMATCH_WEIGHTS``, ``SIAMMATCH_DEVICE``,
``SIAMMATCH_EXTRA_RECIPES``, ``SIAMMATCH_READ_TIMEOUT``, ``SIAMMATCH_REQUEST_TIMEOUT``
from the options; ``SIAMMATCH_API_KEY`` and the limits pass
through from the caller's environment. With more than one worker the command also sets
``PROMETHEUS_MULTIPROC_DIR`` (unless set) to a per-port folder under the temporary
directory and empties it, so ``/metrics`` reports the sum over all workers, and it sets
``OMP_NUM_THREADS`` (unless set) to the CPU cores divided among the workers.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from api.defaults import DEFAULT_CATALOG, DEFAULT_RECIPE
from api.gunicorn_worker import DEFAULT_READ_TIMEOUT

logger = logging.getLogger(__name__)

APP_FACTORY = "api.app:create_app()"
GUNICORN_CONFIG = "python:api.gunicorn_conf"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command to the ``siammatch`` parser."""
    from api.default_catalog import DEFAULT_PRODUCTS, DEFAULT_SEED

    p = sub.add_parser("serve", help="run the HTTP service (gunicorn)")
    p.add_argument(
        "--catalog",
        default=None,
        help=f"catalog folder or postgresql:// URL (default: $SIAMMATCH_CATALOG, else "
        f"{DEFAULT_CATALOG}); a folder that holds no catalog gets one with the synthetic "
        "generator's products, a database an empty one",
    )
    p.add_argument(
        "--index-cache",
        default=None,
        help="folder of this machine's FAISS caches of database catalogs "
        "(default: $SIAMMATCH_INDEX_CACHE, else var/index-cache)",
    )
    p.add_argument("--no-catalog", action="store_true", help="serve without a catalog")
    p.add_argument(
        "--seed-products",
        type=int,
        default=DEFAULT_PRODUCTS,
        help=f"products of a newly created catalog (default {DEFAULT_PRODUCTS}; 0: empty)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the synthetic products")
    p.add_argument("--recipe", help="default recipe (default: api.defaults.DEFAULT_RECIPE)")
    p.add_argument("--weights", help="weights file of the default recipe")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument(
        "--extra-recipe",
        action="append",
        default=[],
        metavar="NAME[=WEIGHTS]",
        help="another recipe requests may choose (repeatable)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument(
        "--threads",
        type=int,
        default=4,
        help="threads per worker: requests one worker serves at once (default 4)",
    )
    p.add_argument(
        "--timeout",
        type=int,
        default=120,
        help="gunicorn's worker timeout, seconds: a worker silent that long (booting "
        "included) is restarted; also the default --request-timeout (default 120)",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=None,
        help="seconds a request may run before it is answered 500 'timeout' and its worker "
        "replaced (default: --timeout)",
    )
    p.add_argument(
        "--read-timeout",
        type=float,
        default=DEFAULT_READ_TIMEOUT,
        help="seconds a client may take to send a whole request before it is answered 408 "
        f"(default {DEFAULT_READ_TIMEOUT:g})",
    )
    p.add_argument("--access-log", action="store_true", help="log every request to stderr")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Check, prepare the catalog, and exec gunicorn (returns only in tests)."""
    from api.cli import UsageError

    _check_ranges(args, UsageError)
    _check_environment(UsageError)
    if args.weights is not None and not os.path.isfile(args.weights):
        raise UsageError(f"weights file {args.weights!r} does not exist")
    recipe = args.recipe or (None if args.weights else DEFAULT_RECIPE)
    extra = _parse_extra(args.extra_recipe, UsageError)
    matchers, default = _load_matchers(recipe, args, extra)
    catalog_dir: str | None = None
    from index.location import INDEX_CACHE_ENV

    index_cache = args.index_cache or os.environ.get(INDEX_CACHE_ENV)
    if index_cache:
        index_cache = os.path.abspath(index_cache)
    if not args.no_catalog:
        from api.default_catalog import ensure_catalog
        from index.location import catalog_location_problem, is_database_url

        given = args.catalog or os.environ.get("SIAMMATCH_CATALOG") or DEFAULT_CATALOG
        problem = catalog_location_problem(given)
        if problem is not None:
            raise UsageError(f"--catalog: {problem}")
        if is_database_url(given):
            catalog_dir = given
            _prepare_database(given, index_cache, matchers[default], UsageError)
        elif ensure_catalog(
            Path(given).resolve(),
            num_products=args.seed_products,
            seed=args.seed,
            matcher=matchers[default],
        ):
            print(
                f"siammatch: created catalog {Path(given).resolve()} "
                f"({args.seed_products} synthetic products)",
                file=sys.stderr,
            )
        catalog_dir = catalog_dir or str(Path(given).resolve())
    env = worker_environment(
        os.environ,
        catalog=catalog_dir,
        index_cache=index_cache,
        recipe=recipe,
        weights=os.path.abspath(args.weights) if args.weights else None,
        device=args.device,
        extra=extra,
        workers=args.workers,
        port=args.port,
        read_timeout=args.read_timeout,
        request_timeout=args.request_timeout or args.timeout,
    )
    argv = gunicorn_argv(args)
    print(
        f"siammatch: serving http://{args.host}:{args.port}/ with {args.workers} worker(s), "
        f"recipe {default}, catalog {_printable(catalog_dir)}",
        file=sys.stderr,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    _exec(argv, env)
    return 0


def _prepare_database(
    url: str, index_cache: str | None, matcher: Any, error: type[Exception]
) -> None:
    """Open the database catalog once before any worker starts: an unreachable server, a
    refused login, missing privileges or a newer schema stop ``serve`` here with one
    message; the schema migrations run once; an empty database gets an empty catalog."""
    from index.catalog import Catalog
    from matcher.errors import CatalogError

    try:
        with Catalog(
            url, matcher=matcher, create=True, index_cache=index_cache, follow=False
        ) as catalog:
            count = len(catalog)
    except CatalogError as exc:
        raise error(f"--catalog: {exc}") from None
    print(f"siammatch: catalog {_printable(url)} ready ({count} products)", file=sys.stderr)


def _printable(catalog: str | None) -> str:
    from index.location import redact_url

    return redact_url(catalog) if catalog else "none"


def _check_environment(error: type[Exception]) -> None:
    """The ``SIAMMATCH_*`` settings the workers will read, checked before any of them boots
    (a worker that refuses its configuration stops gunicorn with exit status 3)."""
    from api.settings import resolve_config
    from matcher.errors import ConfigError

    try:
        resolve_config({})
    except ConfigError as exc:
        raise error(str(exc)) from None


def _check_ranges(args: argparse.Namespace, error: type[Exception]) -> None:
    if not 1 <= args.port <= 65535:
        raise error(f"--port must be between 1 and 65535, got {args.port}")
    for name in ("workers", "threads", "timeout"):
        if getattr(args, name) < 1:
            raise error(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("read_timeout", "request_timeout"):
        value = getattr(args, name)
        if value is not None and not (0 < value < 1e6):
            flag = "--" + name.replace("_", "-")
            raise error(f"{flag} must be a positive number of seconds, got {value}")
    if args.seed_products < 0:
        raise error(f"--seed-products must be 0 or more, got {args.seed_products}")


def _parse_extra(items: Sequence[str], error: type[Exception]) -> dict[str, str | None]:
    extra: dict[str, str | None] = {}
    for item in items:
        name, _, weights = item.partition("=")
        if not name.strip() or "," in item:
            raise error(f"--extra-recipe {item!r}: expected NAME or NAME=WEIGHTS")
        if weights and not os.path.isfile(weights):
            raise error(f"weights file {weights!r} does not exist")
        extra[name.strip()] = os.path.abspath(weights) if weights else None
    return extra


def _load_matchers(recipe: str | None, args: argparse.Namespace, extra: dict[str, str | None]):
    from api.app import load_matchers

    return load_matchers(recipe=recipe, weights=args.weights, extra=extra, device=args.device)


def worker_environment(
    base: os._Environ | dict[str, str],
    *,
    catalog: str | os.PathLike | None,
    recipe: str | None,
    weights: str | None,
    device: str,
    extra: dict[str, str | None],
    workers: int,
    port: int,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    request_timeout: float = 120.0,
    index_cache: str | None = None,
) -> dict[str, str]:
    """The environment gunicorn and its workers run with.

    Args:
        base: the caller's environment (its ``SIAMMATCH_*`` limits and key pass through).
        catalog: catalog folder or database URL, or ``None`` for none.
        index_cache: folder of the FAISS caches of database catalogs (``None``: the
            default, or what ``base`` says).
        recipe: default recipe, or ``None`` (the one stored in ``weights``).
        weights: weights file of the default recipe.
        device: the workers' device.
        extra: further recipes and their weights.
        workers: number of gunicorn workers.
        port: the port (names the metrics folder).
        read_timeout: seconds a client may take to send a request.
        request_timeout: seconds a request may run.

    Returns:
        The new environment.
    """
    env = dict(base)
    settings = {
        "SIAMMATCH_CATALOG": os.fspath(catalog) if catalog is not None else None,
        "SIAMMATCH_INDEX_CACHE": index_cache or base.get("SIAMMATCH_INDEX_CACHE"),
        "SIAMMATCH_RECIPE": recipe,
        "SIAMMATCH_WEIGHTS": weights,
        "SIAMMATCH_DEVICE": device,
        "SIAMMATCH_EXTRA_RECIPES": ",".join(
            f"{name}={path}" if path else name for name, path in extra.items()
        )
        or None,
        "SIAMMATCH_READ_TIMEOUT": f"{read_timeout:g}",
        "SIAMMATCH_REQUEST_TIMEOUT": f"{request_timeout:g}",
    }
    for key, value in settings.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if "OMP_NUM_THREADS" not in env:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        env["OMP_NUM_THREADS"] = str(max(1, cores // workers))
    folder = env.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:  # set but empty, prometheus_client would write its files into the cwd
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if not folder and workers > 1:
        folder = os.path.join(tempfile.gettempdir(), f"siammatch-metrics-{port}")
        env["PROMETHEUS_MULTIPROC_DIR"] = folder
    if folder:
        prepare_metrics_dir(Path(folder))
    return env


def prepare_metrics_dir(folder: Path) -> None:
    """Create ``folder`` and remove the metric files a previous server left there."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def gunicorn_argv(args: argparse.Namespace) -> list[str]:
    """The gunicorn command line (no ``--preload``: workers build the app after forking;
    the worker class and keep-alive come from :mod:`api.gunicorn_conf`)."""
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        GUNICORN_CONFIG,
        "--bind",
        f"{args.host}:{args.port}",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--timeout",
        str(args.timeout),
        "--graceful-timeout",
        "30",
    ]
    if args.access_log:
        argv += ["--access-logfile", "-"]
    return [*argv, APP_FACTORY]


def _exec(argv: list[str], env: dict[str, str]) -> None:  # pragma: no cover - replaced in tests
    os.execve(argv[0], argv, env)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m api.cli_serve [options]``: ``siammatch serve`` without the console script."""
    from api import cli

    if "api.cli_serve" not in cli.COMMAND_MODULES:
        cli.COMMAND_MODULES = (*cli.COMMAND_MODULES, "api.cli_serve")
    return cli.main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
