"""Fixtures of the HTTP service tests: small generated images and apps on temp catalogs.

Apps run the ``siamfc_pixels`` recipe (training-free, no weights file) on small scenes so
that a match takes a fraction of a second on one CPU thread.

Catalog backends: a test that reads or writes the catalog runs on both stores, the SQLite
catalog folder and a PostgreSQL database (``backend`` and ``catalog_location`` in
``tests/conftest.py``); ``app``, ``client`` and ``make_app(catalog=True)`` give it that
catalog. Tests of request checks that refuse a request before the catalog is reached use
``folder_client`` (one backend is enough), and tests without a catalog are not
parametrised at all.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import requests
import torch

import api.cli
import api.cli_serve
from api.app import create_app
from api.default_catalog import DEFAULT_SEED, synth_products
from tests.api.http_helpers import Server, png_bytes, serving
from tests.api.serve_helpers import READ_TIMEOUT
from tests.conftest import BACKENDS
from tests.helpers import clutter_scene, paste, product_image


@dataclass(frozen=True)
class Pictures:
    """The test images.

    Attributes:
        product: ``(80, 80, 3)`` reference photo of the coffee product.
        other: ``(80, 80, 3)`` reference photo of another product (astronaut).
        scene: ``(200, 260, 3)`` cluttered scene with ``product`` pasted at ``box``.
        box: where the product is in the scene, xyxy.
    """

    product: np.ndarray
    other: np.ndarray
    scene: np.ndarray
    box: tuple[int, int, int, int]

    @property
    def product_png(self) -> bytes:
        return png_bytes(self.product)

    @property
    def other_png(self) -> bytes:
        return png_bytes(self.other)

    @property
    def scene_png(self) -> bytes:
        return png_bytes(self.scene)


@pytest.fixture(scope="session")
def pictures() -> Pictures:
    product = cv2.resize(product_image("coffee"), (80, 80), interpolation=cv2.INTER_AREA)
    other = cv2.resize(product_image("astronaut"), (80, 80), interpolation=cv2.INTER_AREA)
    box = (140, 70, 220, 150)
    scene = paste(clutter_scene(200, 260, seed=3), product, box)
    return Pictures(product=product, other=other, scene=scene, box=box)


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: the service tests run small matches, often beside other work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _test_catalog(request: pytest.FixtureRequest) -> str:
    """The test's ``catalog_location``; the test must be parametrised over the backends."""
    if "backend" not in request.fixturenames:
        pytest.fail(
            f"{request.node.name}: make_app(catalog=True) opens the catalog of the `backend` "
            "under test; request the `backend` fixture (or `app`, `client`), or give "
            "CATALOG_DIR",
            pytrace=False,
        )
    return request.getfixturevalue("catalog_location")


@pytest.fixture
def make_app(tmp_path, one_torch_thread, request):
    """``make_app(**config)``: a test app; ``catalog=True`` gives it a fresh catalog: the
    given ``CATALOG_DIR``, else the test's ``catalog_location`` (a folder or a database,
    by ``backend``; the test must request ``backend``)."""

    def make(*, catalog: bool = False, **config):
        settings = {"TESTING": True, "RECIPE": "siamfc_pixels", **config}
        if catalog:
            if "CATALOG_DIR" not in settings:
                settings["CATALOG_DIR"] = _test_catalog(request)
            settings.setdefault("CATALOG_CREATE", True)
        app = create_app(settings)
        # A finalizer of the test itself: it runs before those of the fixtures set up
        # earlier (a catalog's database is dropped only after its app let go of it).
        request.node.addfinalizer(functools.partial(_close_catalog, app))
        return app

    return make


def _close_catalog(app) -> None:
    opened = app.extensions["siammatch"].catalog
    if opened is not None:  # Catalog.close is idempotent
        opened.close()


@pytest.fixture
def app(make_app, catalog_location):
    """An app with an empty catalog, on each backend."""
    return make_app(catalog=True)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def folder_client(make_app, tmp_path):
    """A client of an app with an empty catalog folder, for tests of the request checks
    that refuse a request before the catalog is read or written (not parametrised: the
    store never sees those requests)."""
    return make_app(catalog=True, CATALOG_DIR=str(tmp_path / "catalog")).test_client()


# -- ``siammatch serve`` --------------------------------------------------------------------


@pytest.fixture
def serve_cli(monkeypatch):
    """``api.cli.main`` with the serve command registered and gunicorn's exec captured: the
    ``(argv, env)`` of every exec gunicorn would have had."""
    modules = tuple(dict.fromkeys((*api.cli.COMMAND_MODULES, "api.cli_serve")))
    monkeypatch.setattr(api.cli, "COMMAND_MODULES", modules)
    calls = []
    monkeypatch.setattr(api.cli_serve, "_exec", lambda argv, env: calls.append((argv, env)))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return calls


# -- the real ``siammatch serve`` under attack (test_serve_worker, test_serve_fuzz) ---------

#: Products of the hardened server's catalog: the synthetic generator's first two (a
#: catalog folder is seeded with them, a database catalog is given them through the API).
HARDENED_PRODUCTS = 2


def _hardened_args(catalog: str) -> list[str]:
    args = ["--catalog", catalog, "--seed-products", str(HARDENED_PRODUCTS), "--workers", "2"]
    args += ["--threads", "4", "--recipe", "siamfc_pixels", "--extra-recipe", "siammask_small"]
    return [*args, "--read-timeout", str(READ_TIMEOUT)]


@pytest.fixture(scope="module")
def hardened(tmp_path_factory) -> Iterator[Server]:
    """``siammatch serve``: 2 workers of 4 threads, template matching by default (light),
    the shipped default recipe on request (its verifier and box voting are the code the
    thin images broke), a 2-product catalog folder. (test_serve_worker: its requests never
    reach the catalog, so one backend is enough.)"""
    folder = tmp_path_factory.mktemp("hardened")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")}
    with serving(folder, _hardened_args(str(folder / "catalog")), env=env) as server:
        yield server


@pytest.fixture(scope="module", params=BACKENDS)
def hardened_catalog(request, tmp_path_factory) -> Iterator[Server]:
    """The ``hardened`` server on each catalog backend (test_serve_fuzz adds, reads,
    deletes and searches products): a seeded catalog folder, or a database of the session's
    PostgreSQL cluster (dropped afterwards) given the same products through the API."""
    folder = tmp_path_factory.mktemp(f"hardened-{request.param}")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")}
    if request.param == "sqlite":
        with serving(folder, _hardened_args(str(folder / "catalog")), env=env) as server:
            yield server
        return
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.new_database()
    env["SIAMMATCH_INDEX_CACHE"] = str(folder / "index-cache")
    try:
        with serving(folder, _hardened_args(url), env=env) as server:
            for product_id, photo, metadata in synth_products(HARDENED_PRODUCTS, seed=DEFAULT_SEED):
                added = requests.post(
                    server.base + "/v1/catalog",
                    files={"image": ("p.png", png_bytes(photo))},
                    data={"id": product_id, "metadata": json.dumps(metadata)},
                    timeout=120,
                )
                assert added.status_code == 201, added.text
            yield server
    finally:
        cluster.drop_database(url)
