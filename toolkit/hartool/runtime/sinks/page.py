"""The live page: a threaded stdlib HTTP server with server-sent events, its pages served from the package.

``LiveHub`` holds a bounded, sequence-numbered history of events (cheap to append from the classifier's
thread); each browser's ``/events`` connection has its own server thread that waits on the hub and
renders events into JSON there, so the classifier only pays for one locked ``append``.

Routes: ``/`` the page, ``/static/NAME`` its CSS/JS (package data in ``hartool/runtime/sinks/web``),
``/events`` the SSE stream (``hello`` with a snapshot, then ``window``/``counters``/``devices`` events),
``/state`` the snapshot as JSON (for scripts and tests).
"""

from __future__ import annotations

import errno
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from ...core.errors import WireError

__all__ = ["LiveHub", "LivePageSink", "LiveServer", "parse_host_port", "window_event"]

HISTORY = 1200          # events kept for a page that connects late (about 25 min at one window per 1.28 s)
HEARTBEAT_S = 10.0      # an SSE comment keeps proxies and the browser from timing out an idle stream
COUNTERS_EVERY_S = 0.5
POLL_S = 0.05           # how often a browser's server thread looks for new events (20 updates/s at most)
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                  ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT`` for all interfaces, ``[::1]:PORT`` for IPv6) -> (host, port); WireError."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise WireError(f"bad --serve address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "0.0.0.0", int(port_text)


class LiveHub:
    """A bounded history of (seq, kind, object) events that server threads wait on."""

    def __init__(self, render: Callable[[str, Any], dict[str, Any]], snapshot: Callable[[], dict[str, Any]],
                 counters: Callable[[], dict[str, Any]] | None = None, history: int = HISTORY) -> None:
        self.render = render
        self._snapshot = snapshot
        self.counters = counters or dict
        self._events: deque[tuple[int, str, Any]] = deque(maxlen=history)
        self._cond = threading.Condition()
        self._seq = 0
        self.closed = False

    def push(self, kind: str, obj: Any) -> None:
        """Append one event (O(1), lock held for an append only). The server threads are not woken: they
        look every POLL_S, which spares the classifier a thread hand-off per window."""
        with self._cond:
            self._seq += 1
            self._events.append((self._seq, kind, obj))

    def since(self, seq: int, timeout_s: float) -> tuple[int, list[tuple[str, Any]]]:
        """Events after ``seq`` (waiting up to ``timeout_s`` for one) and the newest sequence number."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._seq <= seq and not self.closed and time.monotonic() < deadline:
                self._cond.wait(min(POLL_S, max(0.0, deadline - time.monotonic())))
            # Sequence numbers are consecutive, so the new events are the last (newest - seq) ones: take them
            # from the right end instead of scanning the history while the classifier may wait for the lock.
            fresh = min(self._seq - seq, len(self._events))
            events = [self._events[-i][1:] for i in range(fresh, 0, -1)]
            return self._seq, events

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        """(sequence number, snapshot dict with the rendered history) taken consistently."""
        with self._cond:
            seq, events = self._seq, list(self._events)
        snap = self._snapshot()
        snap["history"] = [self.render(kind, obj) for _, kind, obj in events]
        snap["counters"] = self.counters()
        return seq, snap

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def _asset(name: str) -> bytes:
    return resources.files("hartool.runtime.sinks").joinpath("web", name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # library code never prints; the CLI reports the page address itself

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(200, _CONTENT_TYPES[".html"], _asset(self.server.page))
        elif path.startswith("/static/") and "/" not in path[len("/static/"):] and ".." not in path:
            name = path[len("/static/"):]
            kind = _CONTENT_TYPES.get(name[name.rfind("."):]) if "." in name else None
            try:
                body = _asset(name) if kind else None
            except (FileNotFoundError, IsADirectoryError):
                body = None
            if body is None or kind is None:
                self._send(404, "text/plain", b"not found\n")
            else:
                self._send(200, kind, body)
        elif path == "/state":
            _, snap = self.server.hub.snapshot()
            self._send(200, "application/json", json.dumps(snap).encode())
        elif path == "/events":
            self._events()
        else:
            self._send(404, "text/plain", b"not found\n")

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _events(self) -> None:
        hub = self.server.hub
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        seq, snap = hub.snapshot()
        try:
            self._event("hello", snap)
            last_beat = last_counters = time.monotonic()
            while not hub.closed:
                seq, events = hub.since(seq, timeout_s=COUNTERS_EVERY_S)
                for kind, obj in events:
                    self._event(kind, hub.render(kind, obj))
                now = time.monotonic()
                if now - last_counters >= COUNTERS_EVERY_S:
                    self._event("counters", hub.counters())
                    last_counters = now
                if now - last_beat >= HEARTBEAT_S:
                    self.wfile.write(b": beat\n\n")
                    self.wfile.flush()
                    last_beat = now
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            return  # the browser went away

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        self.wfile.write(f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode())
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a restarted hartool may rebind at once; a *live* listener still fails

    def __init__(self, address: tuple[str, int], hub: LiveHub, page: str) -> None:
        self.hub = hub
        self.page = page
        super().__init__(address, _Handler)


class LiveServer:
    """Serves one page of ``web/`` plus the hub's events on HOST:PORT from a background thread."""

    def __init__(self, host: str, port: int, hub: LiveHub, page: str = "stream.html") -> None:
        self.hub = hub
        try:
            self._server = _Server((host, port), hub, page)
        except OSError as exc:
            why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise WireError(f"cannot serve the live page on {host}:{port}: {why}") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="live-page", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
        return f"http://{shown}:{port}/"

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.hub.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2.0)


def window_event(p: Any, received: float) -> dict[str, Any]:
    """The page's view of one window: label, confidence, smoothed and raw probabilities, times."""
    raw = p.raw_probs
    return {"window": p.window, "label": p.label, "confidence": round(float(p.confidence), 4),
            "probs": [round(float(x), 4) for x in p.probs],
            "raw_probs": None if raw is None else [round(float(x), 4) for x in raw],
            "t_end_s": p.t_end_s, "dropped": p.dropped, "uncertain": bool(p.uncertain),
            "received": round(received, 3)}


class LivePageSink:
    """The `stream --serve` sink: pushes each window to a :class:`LiveHub` served by a :class:`LiveServer`."""

    def __init__(self, host: str, port: int, labels: Sequence[str], *, title: str = "hartool",
                 counters: Callable[[], dict[str, Any]] | None = None) -> None:
        self.labels = list(labels)
        self.title = title
        self.windows = 0
        self.dropped = 0
        self._extra = counters
        self.hub = LiveHub(self._render, self._snapshot, self._counters)
        self.server = LiveServer(host, port, self.hub, page="stream.html")

    def start(self) -> LivePageSink:
        self.server.start()
        return self

    @property
    def url(self) -> str:
        return self.server.url

    def on_window(self, prediction: Any) -> None:
        # Rendering happens on the server threads; here only a counter and one locked append.
        self.windows += 1
        self.dropped = prediction.dropped
        self.hub.push("window", (prediction, time.time()))

    def _render(self, kind: str, obj: Any) -> dict[str, Any]:
        prediction, received = obj
        return window_event(prediction, received)

    def _snapshot(self) -> dict[str, Any]:
        return {"title": self.title, "labels": self.labels, "now": time.time()}

    def _counters(self) -> dict[str, Any]:
        out: dict[str, Any] = {"windows": self.windows, "dropped_samples": self.dropped}
        if self._extra is not None:
            out.update(self._extra())
        return out

    def counters(self) -> dict[str, Any]:
        return {"page_windows": self.windows}

    def close(self, summary: Any = None) -> dict[str, Any]:
        self.server.close()
        return self.counters()
