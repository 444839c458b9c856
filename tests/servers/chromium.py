"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol.

:class:`Browser` starts ``chromium --headless`` with remote debugging on a free loopback
port, attaches to its page over a WebSocket (``websocket-client``) and records what a
person would not want to see: uncaught exceptions, ``console.error`` calls, browser log
errors, and every network request the page makes. :meth:`Browser.open` loads a page
and waits for its load event; :meth:`Browser.evaluate` runs JavaScript in it;
:meth:`Browser.screenshot` saves the whole page as PNG.

Run as a script to screenshot a local HTML file::

    python -m tests.servers.chromium page.html out.png
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: true once every plotly chart of the page is drawn
PLOTS_DRAWN = (
    "(() => { const d = Array.from(document.querySelectorAll('.plotly-graph-div'));"
    " return d.length > 0 && d.every(g => g._fullLayout && g.querySelector('.main-svg')); })()"
)


class Browser:
    """One headless Chromium with one page; a context manager."""

    def __init__(self, width: int = 1280, height: int = 900, timeout_s: float = 60.0) -> None:
        if CHROMIUM is None:
            raise RuntimeError("chromium is not installed (scripts/setup.sh test installs it)")
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self.errors: list[str] = []
        self.requests: list[str] = []
        self._ids = itertools.count(1)
        self._profile = tempfile.TemporaryDirectory(prefix="fmf-chromium-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._ws: Any = None

    def __enter__(self) -> Browser:
        profile = Path(self._profile.name)
        self._proc = subprocess.Popen(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",  # tests run as root in a container
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout_s
        while not port_file.exists() or not port_file.read_text().strip():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            targets = json.loads(answer.read())
        page = next(t for t in targets if t.get("type") == "page")
        import websocket

        self._ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=self.timeout_s, suppress_origin=True
        )
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self._viewport(self.height)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ws is not None:
            self._ws.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._profile.cleanup()

    def _viewport(self, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params") or {}
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails") or {}
            text = (details.get("exception") or {}).get("description") or details.get("text")
            self.errors.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [a.get("value") or a.get("description") for a in params.get("args") or []]
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and (params.get("entry") or {}).get("level") == "error":
            self.errors.append(f"log: {params['entry'].get('text')}")
        elif method == "Network.requestWillBeSent":
            self.requests.append(str((params.get("request") or {}).get("url")))

    def _wait(self, predicate: Any) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            message = json.loads(self._ws.recv())
            if "method" in message:
                self._event(message)
            if predicate(message):
                return message
        raise TimeoutError("no answer from chromium")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result (events seen meanwhile are kept)."""
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        answer = self._wait(lambda m: m.get("id") == ident)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return dict(answer.get("result") or {})

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        self.send("Page.navigate", url=url)
        self._wait(lambda m: m.get("method") == "Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str) -> Any:
        """Evaluate ``expression`` until it is truthy (bounded by the timeout)."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"never true: {expression}")

    def screenshot(self, path: Path) -> None:
        """Save the whole page (not just the window) as PNG."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self._viewport(height)
        time.sleep(0.5)  # plotly re-lays out on resize
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        self._viewport(self.height)


def main(argv: list[str]) -> int:
    page, out = Path(argv[0]).resolve(), Path(argv[1])
    with Browser() as browser:
        browser.open(page.as_uri())
        browser.wait_for(PLOTS_DRAWN)
        browser.screenshot(out)
        for error in browser.errors:
            print(error, file=sys.stderr)
    return 1 if browser.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
