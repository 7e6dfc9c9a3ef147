"""gunicorn settings of ``siammatch serve`` (``gunicorn -c python:api.gunicorn_conf``).

The application is the factory string ``api.app:create_app()``, called by every worker
after the fork: ``preload_app`` stays off, so the master process never imports torch or
faiss (an OpenMP/faiss call in a forked child of a process that already ran such work can
hang forever). Workers read their configuration from the ``SIAMMATCH_*`` environment
variables (:mod:`api.settings`).

Workers are :class:`api.gunicorn_worker.ThreadWorker`: gunicorn's threaded worker, except
that the main loop reads each request completely (header and body, within
``SIAMMATCH_READ_TIMEOUT`` seconds) before a thread serves it, so slow or idle clients
never hold a thread; gunicorn's own error responses are the service's JSON errors; and a
request running past ``SIAMMATCH_REQUEST_TIMEOUT`` seconds is answered ``500 timeout``.
Kept-alive connections close after :data:`keepalive` idle seconds.

The hooks keep prometheus_client's multiprocess mode tidy (an exited worker's files are
marked dead) and close a worker's catalog when it exits. This module imports nothing
heavy: the master imports it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

wsgi_app = "api.app:create_app()"
preload_app = False
worker_class = "api.gunicorn_worker.ThreadWorker"
keepalive = 5
# gunicorn >= 24's control socket lives at one fixed path per user: two servers on one
# machine (tests, benchmarks, several ports) would take it from each other. Older gunicorn
# ignores the unknown name.
control_socket_disable = True

logger = logging.getLogger(__name__)


def child_exit(server: Any, worker: Any) -> None:
    """Master-side hook: a worker exited; retire its multiprocess metric files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """Worker-side hook: close the worker's catalog (its database connections)."""
    app = getattr(worker, "wsgi_app", None) or getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("siammatch") if app is not None else None
    catalog = getattr(services, "catalog", None)
    if catalog is not None:
        catalog.close()
