"""``/metrics``: Prometheus counters and latency histograms by route and status, and the
gauges of how far the worker's catalog index is behind the change log (on both catalog
backends)."""

from __future__ import annotations

import re
import time

from prometheus_client.parser import text_string_to_metric_families

from index.catalog import Catalog
from tests.api.http_helpers import upload

BEHIND = ("siammatch_catalog_changes_behind", ())
LAG = ("siammatch_catalog_lag_seconds", ())


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_requests_are_counted_by_route_and_status(make_app):
    client = make_app().test_client()
    for _ in range(3):
        client.get("/healthz")
    client.get("/v1/match")  # 405
    client.get("/v1/catalog/abc")  # 503: no catalog
    client.get("/does/not/exist")  # 404
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = _samples(response.get_data(as_text=True))

    def count(route, status, method="GET"):
        key = (
            "siammatch_http_requests_total",
            (("method", method), ("route", route), ("status", status)),
        )
        return samples.get(key, 0)

    assert count("/healthz", "200") == 3
    assert count("/v1/catalog/<product_id>", "503") == 1
    assert count("<unmatched>", "404") == 1
    assert count("<unmatched>", "405") == 1
    hist = (
        "siammatch_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/healthz")),
    )
    assert samples[hist] == 3
    assert re.search(r'siammatch_http_request_duration_seconds_bucket\{.*le="0.005"', response.text)


def test_each_app_has_its_own_registry(make_app):
    first = make_app().test_client()
    first.get("/healthz")
    second = make_app().test_client()
    text = second.get("/metrics").get_data(as_text=True)
    assert 'route="/healthz"' not in text


def test_refused_requests_are_counted(make_app):
    client = make_app(API_KEY="k").test_client()
    client.post("/v1/match")
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'requests_total\{method="POST",route="/v1/match",status="401"\} 1\.0', text)


def _another_machine_adds(catalog_location: str, tmp_path, product_id: str, image) -> None:
    """Add a product as another service process would: its own catalog handle (and, for a
    database, its own FAISS cache), no follower."""
    with Catalog(
        catalog_location, create=False, index_cache=tmp_path / "other-machine", follow=False
    ) as other:
        other.add(product_id, image)


def test_catalog_gauges_count_what_the_index_has_not_applied(
    make_app, backend, catalog_location, tmp_path, pictures
):
    """A catalog without a follower (injected): a product another process adds is counted
    behind, ageing, until a search brings the worker's index up to date."""
    served = Catalog(catalog_location, follow=False)
    client = make_app(CATALOG=served).test_client()
    added = client.post("/v1/catalog", data={"id": "here", "image": upload(pictures.other_png)})
    assert added.status_code == 201, added.get_json()
    idle = _samples(client.get("/metrics").get_data(as_text=True))
    assert idle[BEHIND] == 0 and idle[LAG] == 0
    _another_machine_adds(catalog_location, tmp_path, "late", pictures.product)
    first = _samples(client.get("/metrics").get_data(as_text=True))
    assert first[BEHIND] == 1
    if backend == "postgresql":  # the database dates its log entries: ageing from the add
        assert first[LAG] > 0
    time.sleep(0.3)
    later = _samples(client.get("/metrics").get_data(as_text=True))
    assert later[BEHIND] == 1 and later[LAG] >= 0.3
    found = client.post("/v1/search", data={"scene": upload(pictures.scene_png), "k": "1"})
    assert found.status_code == 200, found.get_json()
    assert [r["product_id"] for r in found.get_json()["results"]] == ["late"]
    synced = _samples(client.get("/metrics").get_data(as_text=True))
    assert synced[BEHIND] == 0 and synced[LAG] == 0


def test_the_follower_catches_the_index_up_without_requests(
    client, catalog_location, tmp_path, pictures
):
    """The service's own catalog has a follower thread: a product another process adds is
    applied to this worker's index with no request syncing it (a scrape does not sync)."""
    assert client.get("/readyz").get_json()["catalog"]["replication"]["follower"] is True
    _another_machine_adds(catalog_location, tmp_path, "late", pictures.product)
    deadline = time.monotonic() + 20
    samples = _samples(client.get("/metrics").get_data(as_text=True))
    while samples[BEHIND] != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        samples = _samples(client.get("/metrics").get_data(as_text=True))
    assert samples[BEHIND] == 0 and samples[LAG] == 0
    catalog = client.get("/readyz").get_json()["catalog"]
    assert catalog["products"] == catalog["index"]["vectors"] == 1
