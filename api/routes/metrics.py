"""Prometheus metrics: request counts and latency by route and status, at ``/metrics``.

Every request is counted in ``siammatch_http_requests_total{method, route, status}`` and
timed in ``siammatch_http_request_duration_seconds{method, route}``; ``route`` is the URL
rule (``/v1/catalog/<product_id>``), or ``<unmatched>`` for unknown paths, so the label
set stays small. With a catalog, ``siammatch_catalog_changes_behind`` and
``siammatch_catalog_lag_seconds`` say how far the worker's FAISS index is behind the
catalog database's change log (the worst live worker in multiprocess mode); the worker's
follower thread refreshes them every round, and a scrape refreshes the answering worker's.
``siammatch_search_stage_seconds{stage}`` times the stages of each ``/v1/search``
(:data:`index.search.STAGES`, plus ``parse``: reading the request and decoding the scene).

Under gunicorn each worker is its own process with its own counters. When the environment
variable ``PROMETHEUS_MULTIPROC_DIR`` names a folder (``siammatch serve`` sets one up
whenever it starts more than one worker), prometheus_client's multiprocess mode is used:
every worker writes its values to files there and ``/metrics`` sums the files of all
workers, so any worker answers for the whole server. The folder must be empty when the
server starts (``siammatch serve`` empties it) and the gunicorn config marks exited
workers dead. Without the variable, each application keeps a registry of its own, which
also carries the process collector (CPU, memory, open files).
"""

from __future__ import annotations

import logging
import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from api.state import current_services
from matcher.errors import SiammatchError

logger = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

EXTENSION = "siammatch_metrics"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STAGE_BUCKETS = (0.001, *LATENCY_BUCKETS[:-3])
UNMATCHED = "<unmatched>"


def multiprocess_dir() -> str | None:
    """The prometheus_client multiprocess folder, or ``None`` outside multiprocess mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class HttpMetrics:
    """The service's metric objects and how to expose them.

    Args:
        multiprocess: use prometheus_client's multiprocess mode (values in files shared by
            gunicorn's workers) instead of a registry of this object's own.
    """

    def __init__(self, *, multiprocess: bool) -> None:
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry(auto_describe=True)
        target = None if multiprocess else self.registry
        self.requests = Counter(
            "siammatch_http_requests",
            "HTTP requests handled, by method, route and status.",
            ["method", "route", "status"],
            registry=target,
        )
        self.latency = Histogram(
            "siammatch_http_request_duration_seconds",
            "Time from request start to response, by method and route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=target,
        )
        self.changes_behind = Gauge(
            "siammatch_catalog_changes_behind",
            "Catalog change-log entries this worker's index has not applied yet.",
            multiprocess_mode="livemax",
            registry=target,
        )
        self.lag_seconds = Gauge(
            "siammatch_catalog_lag_seconds",
            "Age of the oldest change-log entry this worker's index has not applied yet.",
            multiprocess_mode="livemax",
            registry=target,
        )
        self.search_stages = Histogram(
            "siammatch_search_stage_seconds",
            "Time spent in each stage of a scene search (/v1/search).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=target,
        )
        if not multiprocess:
            ProcessCollector(registry=self.registry)

    def observe_replication(self, state: dict) -> None:
        """Record a catalog's :meth:`~index.catalog_folder.CatalogFolder.replication`."""
        self.changes_behind.set(state["changes_behind"])
        self.lag_seconds.set(state["lag_seconds"])

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.latency.labels(method=method, route=route).observe(seconds)

    def observe_stages(self, seconds: dict[str, float]) -> None:
        """Record the stage times (seconds by stage name) of one scene search."""
        for stage, value in seconds.items():
            self.search_stages.labels(stage=stage).observe(value)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (all workers' in multiprocess mode)."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def _start_timer() -> None:
    g.request_started = time.perf_counter()


def _record(response: Response) -> Response:
    started = g.pop("request_started", None)
    if started is not None:
        rule = request.url_rule
        current_app.extensions[EXTENSION].observe(
            method=request.method,
            route=rule.rule if rule is not None else UNMATCHED,
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
    return response


def init_app(app: Flask) -> None:
    """Create the metrics of ``app`` and install the request hooks that feed them."""
    app.extensions[EXTENSION] = HttpMetrics(multiprocess=multiprocess_dir() is not None)
    app.before_request(_start_timer)
    app.after_request(_record)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics.

    Returns:
        The text exposition format.
    ---
    get:
      summary: Prometheus metrics
      description: Request counts and latency histograms by route and status, in the
        Prometheus text format (all gunicorn workers summed in multiprocess mode). Outside
        `/v1`, so it never needs the API key.
      tags: [service]
      security: []
      responses:
        200:
          description: Prometheus text exposition format.
          content:
            text/plain:
              schema: {type: string}
    """
    metrics = current_app.extensions[EXTENSION]
    catalog = current_services().catalog
    if catalog is not None:
        try:
            metrics.observe_replication(catalog.replication())
        except SiammatchError as exc:  # the scrape still answers; /readyz reports the failure
            logger.warning("metrics: catalog replication state unavailable: %s", exc)
    body = metrics.exposition()
    return Response(body, content_type=CONTENT_TYPE_LATEST)
