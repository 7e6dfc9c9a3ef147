"""``/openapi.json`` is generated from the views and matches the URL map exactly."""

from __future__ import annotations

import re

from tests.api.http_helpers import upload

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


def test_documented_ranges_are_the_validated_ones(make_app, backend, pictures):
    """The request schemas come from the same declarations validation uses: a service
    started with other limits documents them, and refuses one past each documented bound."""
    app = make_app(catalog=True, MAX_INSTANCES=7, MAX_K=4, MAX_PAGE_SIZE=9)
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    match = schemas["MatchForm"]["properties"]
    assert match["max_instances"]["maximum"] == 7 and match["max_instances"]["minimum"] == 1
    assert match["threshold"]["minimum"] == 0 and match["threshold"]["maximum"] == 1
    assert match["recipe"]["enum"] == sorted(app.extensions["siammatch"].matchers)
    assert schemas["MatchJson"]["properties"]["max_instances"]["maximum"] == 7
    assert schemas["SearchForm"]["properties"]["k"]["maximum"] == 4
    listing = spec["paths"]["/v1/catalog"]["get"]["parameters"]
    limit = next(p for p in listing if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 9 and limit["schema"]["default"] == 50

    def match(**fields):
        files = {"reference": upload(pictures.product_png), "scene": upload(pictures.scene_png)}
        return client.post("/v1/match", data={**files, **fields})

    over = match(max_instances="8")
    assert over.status_code == 400 and "max_instances" in over.get_json()["error"]["message"]
    assert match(max_instances="7").status_code == 200
    assert match(recipe="not_in_the_enum").status_code == 400
    assert client.get("/v1/catalog?limit=10").status_code == 400
    assert client.get("/v1/catalog?limit=9").status_code == 200
    search = {"scene": upload(pictures.scene_png), "k": "5"}
    assert client.post("/v1/search", data=search).status_code == 400
