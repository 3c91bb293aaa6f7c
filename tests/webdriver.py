"""A minimal W3C WebDriver client over urllib: real headless Chromium driven by Debian's chromedriver.

Used by the live-page tests and by benchmarks/fleet.py (screenshot). No selenium: the protocol is a few
JSON-over-HTTP calls. ``Browser.wait_for(js, timeout)`` polls a JS expression until it is truthy; the
timeout is only a safety net, never an assertion on speed.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from hartool_testing import wait_until

__all__ = ["Browser", "browser_available"]

CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1100,900"]


def browser_available() -> bool:
    return Path(CHROMIUM).exists() and shutil.which("chromedriver") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """One chromedriver process with one headless Chromium session; use as a context manager."""

    def __init__(self, start_timeout: float = 60.0) -> None:
        self.port = _free_port()
        self._profile = tempfile.mkdtemp(prefix="hartool-chromium-")
        self._proc = subprocess.Popen([shutil.which("chromedriver") or "chromedriver", f"--port={self.port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                self._call("GET", "/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("chromedriver did not start") from None
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM, "args": [*CHROME_ARGS, f"--user-data-dir={self._profile}"]}}}}
        self.session = self._call("POST", "/session", caps, timeout=start_timeout)["sessionId"]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self._base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"{}").get("value")
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"webdriver {method} {path}: {exc.read()[:500]!r}") from exc

    def get(self, url: str) -> None:
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def js(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body; use ``return``) in the page and return its JSON value."""
        return self._call("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, *args: Any, timeout: float = 60.0, interval: float = 0.2) -> Any:
        """Poll ``script`` until it returns something truthy; AssertionError after ``timeout`` (a safety net)."""
        return wait_until(lambda: self.js(script, *args), what=f"page condition {script}", timeout=timeout,
                          interval=interval)

    def screenshot(self, path: str | Path) -> Path:
        png = base64.b64decode(self._call("GET", f"/session/{self.session}/screenshot"))
        out = Path(path)
        out.write_bytes(png)
        return out

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._call("DELETE", f"/session/{self.session}", timeout=10)
        except (RuntimeError, urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # chromedriver is killed next anyway
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
