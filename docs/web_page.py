"""Regenerate ``docs/web_page.png``: the web page with a match result drawn.

Serves the application in-process (werkzeug, loopback, a temporary catalog of a few
synthetic products so the catalog picker is filled), opens it in Debian's headless
Chromium with Playwright (:mod:`tests.browser`), uploads the demo pair of ``siammatch demo`` (the
coffee cup and a collage with two copies of it), presses *Match*, waits for the drawing and
saves a screenshot.

    python docs/web_page.py [--out docs/web_page.png]

Needs Debian's ``chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from api.app import create_app  # noqa: E402
from api.default_catalog import ensure_catalog  # noqa: E402
from api.demo import demo_pair  # noqa: E402
from tests.browser import evaluate, find_chromium, open_page, wait_for  # noqa: E402

logger = logging.getLogger("docs.web_page")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshot of the siammatch web page.")
    parser.add_argument("--out", default=str(ROOT / "docs" / "web_page.png"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    chromium = find_chromium()
    if chromium is None:
        logger.error("no chromium found: apt-get install chromium")
        return 1
    with tempfile.TemporaryDirectory(prefix="siammatch-shot-") as tmp:
        folder = Path(tmp)
        product, scene, _ = demo_pair(seed=0)
        Image.fromarray(product).save(folder / "coffee-cup.png")
        Image.fromarray(scene).save(folder / "scene.png")
        ensure_catalog(folder / "catalog", num_products=6)
        app = create_app({"CATALOG_DIR": str(folder / "catalog"), "LOG_LEVEL": "WARNING"})
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with open_page(chromium, width=1280, height=860, timeout_s=120) as page:
                page.goto(f"http://127.0.0.1:{server.server_port}/")
                wait_for(page, "document.getElementById('catalog-select').options.length > 1")
                page.set_input_files("#reference-file", str(folder / "coffee-cup.png"))
                page.set_input_files("#scene-file", str(folder / "scene.png"))
                evaluate(page, "document.getElementById('match-button').click()")
                status = "document.getElementById('status')"
                state = wait_for(
                    page,
                    f"['done', 'error'].includes({status}.dataset.state) && {status}.dataset.state",
                )
                text = evaluate(page, f"{status}.textContent")
                if state != "done":
                    logger.error("the page reports an error: %s", text)
                    return 1
                out = Path(args.out)
                page.screenshot(path=str(out), full_page=True)
        finally:
            server.shutdown()
            app.extensions["siammatch"].catalog.close()
    logger.info("%s: %s", out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
