"""Fixtures of the HTTP service tests: small generated images and apps on temp catalogs.

Apps run the ``siamfc_pixels`` recipe (training-free, no weights file) on small scenes so
that a match takes a fraction of a second on one CPU thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import torch

from api.app import create_app
from tests.api.http_helpers import Server, png_bytes, serving
from tests.api.serve_helpers import READ_TIMEOUT
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


@pytest.fixture
def make_app(tmp_path, one_torch_thread):
    """``make_app(**config)``: a test app; ``catalog=True`` gives it a fresh temp catalog."""

    made = []

    def make(*, catalog: bool = False, **config):
        settings = {"TESTING": True, "RECIPE": "siamfc_pixels", **config}
        if catalog:
            settings.setdefault("CATALOG_DIR", str(tmp_path / "catalog"))
            settings.setdefault("CATALOG_CREATE", True)
        app = create_app(settings)
        made.append(app)
        return app

    yield make
    for app in made:  # Catalog.close is idempotent
        opened = app.extensions["siammatch"].catalog
        if opened is not None:
            opened.close()


@pytest.fixture
def app(make_app):
    """An app with an empty temp catalog."""
    return make_app(catalog=True)


@pytest.fixture
def client(app):
    return app.test_client()


# -- the real ``siammatch serve`` under attack (test_serve_worker, test_serve_fuzz) ---------


@pytest.fixture(scope="module")
def hardened(tmp_path_factory) -> Server:
    """``siammatch serve``: 2 workers of 4 threads, template matching by default (light),
    the shipped default recipe on request (its verifier and box voting are the code the
    thin images broke), a 2-product catalog."""
    folder = tmp_path_factory.mktemp("hardened")
    args = ["--catalog", str(folder / "catalog"), "--seed-products", "2", "--workers", "2"]
    args += ["--threads", "4", "--recipe", "siamfc_pixels", "--extra-recipe", "siammask_small"]
    args += ["--read-timeout", str(READ_TIMEOUT)]
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")}
    with serving(folder, args, env=env) as server:
        yield server
