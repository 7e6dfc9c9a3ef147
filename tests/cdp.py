"""A minimal headless-Chromium driver over the Chrome DevTools protocol (CDP).

Chromium is started with ``--remote-debugging-pipe``: it reads protocol messages from file
descriptor 3 and writes its answers and events to descriptor 4, each message a JSON
object terminated by a NUL byte. That needs no WebSocket client and no browser-automation
package, only the ``chromium`` binary (Debian's ``chromium`` package). Used by the web page
test and by ``docs/web_page.py``, which regenerates ``docs/web_page.png``.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary on ``PATH`` (or ``$CHROMIUM``), or ``None``."""
    explicit = os.environ.get("CHROMIUM")
    if explicit and shutil.which(explicit):
        return shutil.which(explicit)
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(RuntimeError):
    """The browser answered a command with an error, or stopped answering."""


class Browser:
    """One headless Chromium with one page, driven over the DevTools pipe.

    Args:
        binary: the Chromium executable.
        width: viewport width, CSS pixels.
        height: viewport height, CSS pixels.
        timeout: seconds to wait for any single answer.
    """

    def __init__(self, binary: str, *, width: int = 1280, height: int = 900, timeout: float = 60):
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="siammatch-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire() -> None:  # in the child: the pipe ends become descriptors 3 and 4
            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)  # dup2 makes them inheritable; the originals are not
            os.dup2(high_w, 4)

        args = [
            binary,
            "--headless",
            "--no-sandbox",  # root in containers
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire,
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session = self._attach(width, height)

    # -- protocol ------------------------------------------------------------------------

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True):
        """Send one command and return its ``result``.

        Raises:
            CDPError: the browser reported an error or did not answer in time.
        """
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and getattr(self, "session", None):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("the browser did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise CDPError("the browser closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _attach(self, width: int, height: int) -> str:
        targets = self.send("Target.getTargets", session=False)["targetInfos"]
        pages = [t for t in targets if t["type"] == "page"]
        target = (
            pages[0]["targetId"]
            if pages
            else self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        )
        session = self.send(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, session=False
        )["sessionId"]
        self.session = session
        self.send("Page.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        return session

    # -- page helpers --------------------------------------------------------------------

    def navigate(self, url: str) -> None:
        """Load ``url`` and wait until its scripts ran (``document.readyState``)."""
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'")

    def evaluate(self, expression: str) -> Any:
        """Evaluate a JavaScript expression in the page (awaiting promises); its value."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"JavaScript error: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float | None = None) -> Any:
        """Poll ``expression`` until it is truthy; its value.

        Raises:
            CDPError: still falsy after ``timeout`` seconds.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise CDPError(f"timed out waiting for {expression}")

    def set_files(self, selector: str, paths: list[str | Path]) -> None:
        """Put files into an ``<input type=file>`` (fires its change event)."""
        root = self.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise CDPError(f"no element matches {selector!r}")
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(p) for p in paths]})

    def screenshot(self, path: str | Path, *, selector: str | None = None) -> Path:
        """Save a PNG of the page (or of the element ``selector``)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if selector is not None:
            box = self.evaluate(
                f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                ".getBoundingClientRect(); return [r.x + scrollX, r.y + scrollY, r.width, "
                "r.height]; })()"
            )
            params["clip"] = {
                "x": box[0],
                "y": box[1],
                "width": box[2],
                "height": box[3],
                "scale": 1,
            }
        data = self.send("Page.captureScreenshot", params)["data"]
        out = Path(path)
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        try:
            self.send("Browser.close", session=False)
        except (CDPError, OSError):
            logger.debug("Browser.close failed; terminating chromium")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
