"""``/openapi.json`` is generated from the views and matches the URL map exactly."""

from __future__ import annotations

import re

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _rules(app) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        out.setdefault(path, set()).update(m.lower() for m in rule.methods - IGNORED_METHODS)
    return out


def _spec_paths(spec) -> dict[str, set[str]]:
    verbs = {"get", "post", "put", "patch", "delete"}
    return {path: {k for k in item if k in verbs} for path, item in spec["paths"].items()}


def test_every_route_is_in_the_spec_and_vice_versa(make_app):
    app = make_app()
    spec = app.test_client().get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert _rules(app) == _spec_paths(spec)
    assert "/v1/match" in spec["paths"] and "/v1/catalog/{product_id}/image" in spec["paths"]


def test_operations_are_documented(make_app):
    app = make_app()
    spec = app.test_client().get("/openapi.json").get_json()
    for path, item in spec["paths"].items():
        for verb, operation in item.items():
            assert operation.get("summary"), (path, verb)
            assert "200" in operation["responses"] or "201" in operation["responses"], (path, verb)
            if "{product_id}" in path:
                names = [p["name"] for p in operation["parameters"] if p["in"] == "path"]
                assert names == ["product_id"], (path, verb)


def test_references_resolve(make_app):
    app = make_app()
    spec = app.test_client().get("/openapi.json").get_json()
    text = str(spec)
    for kind, name in re.findall(r"#/components/(\w+)/(\w+)", text):
        assert name in spec["components"][kind], (kind, name)


def test_security_is_declared_only_with_an_api_key(make_app):
    open_spec = make_app().test_client().get("/openapi.json").get_json()
    assert "security" not in open_spec
    keyed = make_app(API_KEY="k").test_client().get("/openapi.json").get_json()
    assert {"ApiKey": []} in keyed["security"]
    assert keyed["paths"]["/healthz"]["get"]["security"] == []
