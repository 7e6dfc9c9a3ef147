"""The application factory: configuration, probes, API key, and the error handlers."""

from __future__ import annotations

import logging

import pytest

from api.app import create_app
from api.errors import STATUS, status_for
from api.settings import from_environment, resolve_config
from matcher import errors
from matcher.errors import ConfigError
from tests.api.http_helpers import upload


def test_probes_without_catalog(make_app):
    client = make_app().test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["status"] == "ready"
    assert body["default_recipe"] == "siamfc_pixels"
    assert body["recipes"] == ["siamfc_pixels"]
    assert body["catalog"] is None


def test_heavy_objects_live_in_extensions(make_app):
    app = make_app()
    services = app.extensions["siammatch"]
    assert services.matcher.name == "siamfc_pixels"
    assert services.catalog is None
    assert app.config["MAX_PIXELS"] == 25_000_000


def test_injected_matcher_is_used(make_app):
    import matcher

    injected = matcher.build("siamfc_pixels", overrides=["inference.match.max_instances=3"])
    app = make_app(MATCHER=injected, RECIPE="ignored-when-injected")
    assert app.extensions["siammatch"].matcher is injected
    assert app.config["RECIPE"] == "siamfc_pixels"
    assert app.extensions["siammatch"].default_max_instances("siamfc_pixels") == 3


def test_default_recipe_comes_from_the_defaults_module(monkeypatch):
    import api.defaults

    monkeypatch.delenv("SIAMMATCH_RECIPE", raising=False)
    assert resolve_config({})["RECIPE"] == api.defaults.DEFAULT_RECIPE
    assert resolve_config({"WEIGHTS": "x.pth"})["RECIPE"] is None  # the file's own recipe


def test_environment_configures_the_app(monkeypatch):
    monkeypatch.setenv("SIAMMATCH_MAX_INSTANCES", "7")
    monkeypatch.setenv("SIAMMATCH_API_KEY", "sesame")
    monkeypatch.setenv("SIAMMATCH_EXTRA_RECIPES", "a, b=/w/b.pth")
    monkeypatch.setenv("SIAMMATCH_DEFAULT_THRESHOLD", "0.4")
    config = resolve_config({"MAX_K": 3})
    assert config["MAX_INSTANCES"] == 7
    assert config["API_KEY"] == "sesame"
    assert config["EXTRA_RECIPES"] == {"a": None, "b": "/w/b.pth"}
    assert config["DEFAULT_THRESHOLD"] == 0.4
    assert config["MAX_K"] == 3
    # The dict given to the factory wins over the environment.
    assert resolve_config({"MAX_INSTANCES": 2})["MAX_INSTANCES"] == 2


@pytest.mark.parametrize(
    "config, words",
    [
        ({"MAX_PIXELS": 0}, "MAX_PIXELS"),
        ({"MAX_CONTENT_LENGTH": "big"}, "MAX_CONTENT_LENGTH"),
        ({"DEFAULT_THRESHOLD": 1.5}, "DEFAULT_THRESHOLD"),
        ({"EXTRA_RECIPES": "a,b"}, "EXTRA_RECIPES"),
        ({"API_KEY": ""}, "API_KEY"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"PRECISION": "fp16"}, "PRECISION"),
    ],
)
def test_bad_config_values_are_refused(config, words):
    with pytest.raises(ConfigError, match=words):
        resolve_config(config)


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match="SIAMMATCH_MAX_K"):
        from_environment({"SIAMMATCH_MAX_K": "many"})


def test_precision_applies_to_every_loaded_recipe(monkeypatch, make_app):
    from matcher.inference_prep import precision_of

    monkeypatch.setattr("matcher.inference_prep.bf16_native", lambda device: True)
    monkeypatch.setenv("SIAMMATCH_PRECISION", "bf16")
    assert resolve_config({})["PRECISION"] == "bf16"
    monkeypatch.delenv("SIAMMATCH_PRECISION")
    assert resolve_config({})["PRECISION"] is None  # each recipe's own
    extra = {"EXTRA_RECIPES": {"siammask_small": None}}
    low = make_app(PRECISION="bf16", **extra).extensions["siammatch"].matchers["siammask_small"]
    assert precision_of(low.net) == "bf16" and precision_of(low.verifier.embedder) == "bf16"
    plain = make_app(**extra).extensions["siammatch"].matchers["siammask_small"]
    assert precision_of(plain.net) == "fp32"


def test_recipe_with_untrained_weights_is_refused():
    with pytest.raises(ConfigError, match="needs trained weights"):
        create_app({"RECIPE": "siamrpn_alexnet_upchannel"})


def test_unknown_recipe_is_refused():
    with pytest.raises(errors.UnknownComponentError):
        create_app({"RECIPE": "no_such_recipe"})


def test_every_library_error_has_a_client_status():
    assert status_for(errors.InvalidImageError("x")) == 400
    assert status_for(errors.ImageTooLargeError("x")) == 413
    assert status_for(errors.InvalidBoxError("x")) == 400
    assert status_for(errors.InvalidArgumentError("x")) == 400
    assert status_for(errors.UnknownComponentError("x")) == 400
    assert status_for(errors.ProductNotFoundError("x")) == 404
    assert status_for(errors.DuplicateProductError("x")) == 409
    assert status_for(errors.CatalogError("x")) == 500
    assert status_for(RuntimeError("x")) == 500
    library = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.SiammatchError)
    ]
    assert all(any(c in STATUS for c in cls.__mro__) for cls in library)


def _broken_app(make_app, exc):
    app = make_app()

    @app.get("/v1/boom")
    def boom():
        raise exc

    return app.test_client()


def test_unexpected_exception_is_500_without_traceback(make_app, caplog):
    client = _broken_app(make_app, RuntimeError("secret internals /etc/passwd"))
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = client.get("/v1/boom")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"code": "internal_error", "message": "internal server error"}
    }
    assert "secret" not in response.get_data(as_text=True)
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "secret internals" in str(logged[0].exc_info[1])


def test_server_side_library_error_is_500_and_logged(make_app, caplog):
    client = _broken_app(make_app, errors.CatalogError("database disk image is malformed"))
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = client.get("/v1/boom")
    assert response.status_code == 500
    body = response.get_json()["error"]
    assert body["code"] == "catalog_error" and "malformed" not in body["message"]
    assert any(r.exc_info for r in caplog.records)


@pytest.fixture
def keyed_client(make_app):
    return make_app(API_KEY="sesame").test_client()


def test_api_key_is_required_on_v1(keyed_client, pictures):
    def post(headers):
        data = {
            "reference": upload(pictures.product_png),
            "scene": upload(pictures.scene_png),
        }
        return keyed_client.post("/v1/match", data=data, headers=headers)

    refused = post({})
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "unauthorized"
    assert "Bearer" in refused.headers["WWW-Authenticate"]
    assert post({"X-API-Key": "wrong"}).status_code == 401
    assert post({"Authorization": "Bearer wrong"}).status_code == 401
    assert post({"Authorization": "Basic sesame"}).status_code == 401
    assert post({"X-API-Key": "sesame"}).status_code == 200
    assert post({"Authorization": "Bearer sesame"}).status_code == 200
    # Unknown /v1 routes do not reveal themselves without the key either.
    assert keyed_client.get("/v1/whatever").status_code == 401


def test_api_key_leaves_probes_page_and_docs_open(keyed_client):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/"):
        assert keyed_client.get(path).status_code == 200, path


def test_unknown_route_outside_v1_is_json_404_too(make_app):
    response = make_app().test_client().get("/nothing")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
