"""Shared pieces of the tests of the real ``siammatch serve`` under attack
(``test_serve_worker``, ``test_serve_fuzz``): the hardened server's read timeout, how fast
``/healthz`` must answer, and a small match request."""

from __future__ import annotations

import time

import cv2
import requests

from tests.api.http_helpers import png_bytes
from tests.helpers import clutter_scene, paste, product_image

READ_TIMEOUT = 3.0  # the module server's --read-timeout, seconds
HEALTHZ_BOUND = 1.0  # seconds


def healthz_seconds(base: str) -> float:
    started = time.monotonic()
    response = requests.get(base + "/healthz", timeout=10)
    assert response.status_code == 200
    return time.monotonic() - started


def match_files() -> dict:
    product = cv2.resize(product_image("coffee"), (64, 64), interpolation=cv2.INTER_AREA)
    scene = paste(clutter_scene(160, 200, seed=5), product, (100, 50, 164, 114))
    return {"reference": ("r.png", png_bytes(product)), "scene": ("s.png", png_bytes(scene))}
