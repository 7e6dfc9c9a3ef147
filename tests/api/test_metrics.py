"""``/metrics``: Prometheus counters and latency histograms by route and status."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families


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
