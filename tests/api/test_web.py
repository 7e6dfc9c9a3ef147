"""The web page at ``/``: served without external resources, and working in a browser.

The browser test drives Debian's headless ``chromium`` with Playwright
(:mod:`tests.browser`): it uploads a reference and a scene, presses *Match* and checks the
drawing on the canvas, the instance table, and the page's RLE decoder against
pycocotools. Chromium is found on ``PATH`` (``make system-deps``, which ``make test`` runs,
installs it); without it the test fails and says why.
"""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from werkzeug.serving import make_server

from matcher.mask_codec import encode_rle
from tests.api.http_helpers import upload
from tests.browser import evaluate, find_chromium, open_page, wait_for

STATIC = Path(__file__).resolve().parents[2] / "api" / "static"
TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "templates"


def test_page_renders_its_form(make_app):
    client = make_app(API_KEY="k").test_client()
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for element in ('id="reference-file"', 'id="scene-file"', 'id="canvas"', 'id="api-key"'):
        assert element in html
    assert '<option value="siamfc_pixels" selected>' in html
    assert 'src="/static/siammatch.js"' in html
    script = client.get("/static/siammatch.js")
    assert script.status_code == 200 and "javascript" in script.mimetype
    assert client.get("/static/siammatch.css").mimetype == "text/css"


def test_page_without_key_has_no_key_field(make_app):
    html = make_app().test_client().get("/").get_data(as_text=True)
    assert 'id="api-key"' not in html


def test_page_loads_nothing_from_outside():
    for path in [*STATIC.iterdir(), *TEMPLATES.iterdir()]:
        text = path.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:  # the web page is a feature: no browser is a failure, not a skip
        pytest.fail(
            "headless chromium is needed for the web page test: none on PATH (or $CHROMIUM); "
            "'make system-deps' installs Debian's chromium (make test runs it)"
        )
    return path


@contextlib.contextmanager
def serving(app):
    """``app`` served on a free loopback port by werkzeug, in a thread; yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def live_server(make_app):
    """An app without catalog, served on loopback."""
    app = make_app()
    with serving(app) as base:
        yield base, app


STATUS = "document.getElementById('status')"


def _wait_done(page) -> str:
    state = wait_for(
        page, f"['done', 'error'].includes({STATUS}.dataset.state) && {STATUS}.dataset.state"
    )
    text = evaluate(page, f"{STATUS}.textContent")
    assert state == "done", text
    return text


def test_browser_upload_draws_the_result(chromium, live_server, pictures, tmp_path):
    base, app = live_server
    reference = tmp_path / "reference.png"
    scene = tmp_path / "scene.png"
    Image.fromarray(pictures.product).save(reference)
    Image.fromarray(pictures.scene).save(scene)
    expected = (
        app.test_client()
        .post(
            "/v1/match",
            data={"reference": upload(pictures.product_png), "scene": upload(pictures.scene_png)},
        )
        .get_json()
    )
    count = len(expected["instances"])
    assert count >= 1

    with open_page(chromium) as page:
        page.goto(base + "/")
        page.set_input_files("#reference-file", str(reference))
        page.set_input_files("#scene-file", str(scene))
        evaluate(page, "document.getElementById('match-button').click()")
        status = _wait_done(page)
        assert evaluate(page, f"{STATUS}.dataset.count") == str(count)
        assert f"{count} instance" in status
        rows = evaluate(page, "document.querySelectorAll('#instances tbody tr').length")
        assert rows == count
        size = evaluate(page, "[canvas.width, canvas.height]")
        assert size == [pictures.scene.shape[1], pictures.scene.shape[0]]
        # The first box's left edge is stroked in the first palette colour.
        x0, y0, _, y1 = (round(v) for v in expected["instances"][0]["box"])
        colour = evaluate(page, "siammatch.palette(0)")
        strip = evaluate(
            page,
            f"Array.from(canvas.getContext('2d').getImageData({x0 - 3}, {(y0 + y1) // 2}, 7, 1)"
            ".data)",
        )
        pixels = np.array(strip).reshape(7, 4)[:, :3]
        assert np.abs(pixels - np.array(colour)).max(axis=1).min() <= 8, pixels
        # Away from the drawings the canvas shows the scene itself.
        scene_pixel = evaluate(
            page, "Array.from(canvas.getContext('2d').getImageData(5, 195, 1, 1).data)"
        )
        assert np.abs(np.array(scene_pixel[:3]) - pictures.scene[195, 5]).max() <= 2


def test_browser_rle_decoder_matches_pycocotools(chromium, live_server):
    base, _ = live_server
    rng = np.random.default_rng(0)
    mask = np.zeros((37, 53), bool)
    mask[5:30, 10:40] = True
    mask[rng.random(mask.shape) < 0.05] ^= True
    rle = encode_rle(mask)
    with open_page(chromium) as page:
        page.goto(base + "/")
        decoded = evaluate(
            page,
            f"(() => {{ const m = siammatch.decodeRle({{size: {rle['size']}, "
            f"counts: {rle['counts']!r}}}); return [m.height, m.width, Array.from(m.data)]; }})()",
        )
    height, width, data = decoded
    assert (height, width) == mask.shape
    assert np.array_equal(np.array(data, dtype=bool).reshape(height, width), mask)


def test_browser_catalog_reference_and_search(chromium, make_app, backend, pictures, tmp_path):
    app = make_app(catalog=True)
    client = app.test_client()
    for pid, data in (("coffee", pictures.product_png), ("astronaut", pictures.other_png)):
        added = client.post("/v1/catalog", data={"id": pid, "image": upload(data)})
        assert added.status_code == 201
    scene = tmp_path / "scene.png"
    Image.fromarray(pictures.scene).save(scene)
    with serving(app) as base, open_page(chromium) as page:
        page.goto(base + "/")
        options = wait_for(
            page,
            "Array.from(document.querySelectorAll('#catalog-select option'))"
            ".map(o => o.value).filter(v => v).join(',')",
        )
        assert options == "astronaut,coffee"
        evaluate(
            page,
            "(() => { const s = document.getElementById('catalog-select'); s.value = 'coffee';"
            " s.dispatchEvent(new Event('change')); })()",
        )
        wait_for(page, "!document.getElementById('reference-preview').hidden")
        page.set_input_files("#scene-file", str(scene))
        evaluate(page, "document.getElementById('match-button').click()")
        assert "1 instance found" in _wait_done(page)
        assert (
            evaluate(page, "document.querySelector('#instances tbody td:nth-child(2)').textContent")
            == "coffee"
        )
        evaluate(page, "document.getElementById('search-button').click()")
        assert "1 product found" in _wait_done(page)
        label = evaluate(
            page, "document.querySelector('#instances tbody td:nth-child(2)').textContent"
        )
        assert label == "coffee"
