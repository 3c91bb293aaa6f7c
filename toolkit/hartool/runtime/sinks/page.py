"""The live page: a threaded stdlib HTTP server with server-sent events, its pages served from the package.

``LiveHub`` holds a bounded, sequence-numbered history of events (cheap to append from the classifier's
thread); each browser's ``/events`` connection has its own server thread that waits on the hub and
renders events into JSON there, so the classifier only pays for one locked ``append``.

Routes: ``/`` the page, ``/static/NAME`` its CSS/JS (package data in ``hartool/runtime/sinks/web``),
``/events`` the SSE stream (``hello`` with a snapshot, then ``window``/``counters``/``devices`` events),
``/state`` the snapshot as JSON (for scripts and tests).

Exposure (SECURITY.md): the server binds 127.0.0.1 unless given a host (``--serve :PORT`` is localhost,
``--serve 0.0.0.0:PORT`` every interface). Every request's ``Host`` header must be an IP address,
``localhost``, this machine's name (or NAME.local) or the name it was bound to, else 403: a web page
elsewhere cannot reach the server through DNS rebinding. With a token (:func:`hartool.wire.door.read_token`),
every request needs it as ``?token=``, an ``Authorization: Bearer`` (or ``X-Hartool-Token``) header or the
cookie that a tokened visit to ``/`` sets, else 401. Device strings are made safe (``safe_text``) here and set as text (never HTML) by the page's
scripts; a Content-Security-Policy allows only the page's own scripts.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from ...core.errors import WireError
from ...core.safetext import MAX_LABEL, safe_text
from ...wire.door import offered_tokens, same_token

__all__ = ["LiveHub", "LivePageSink", "LiveServer", "parse_host_port", "window_event"]

HISTORY = 1200          # events kept for a page that connects late (about 25 min at one window per 1.28 s)
HEARTBEAT_S = 10.0      # an SSE comment keeps proxies and the browser from timing out an idle stream
COUNTERS_EVERY_S = 0.5
POLL_S = 0.05           # how often a browser's server thread looks for new events (20 updates/s at most)
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                  ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
LOCALHOST = "127.0.0.1"
WILDCARDS = ("0.0.0.0", "::")
TOKEN_COOKIE = "hartool_token"
# Only the page's own files: an injected string could not run a script even if it reached the HTML.
_SECURITY_HEADERS = (("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
                     ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); ``:PORT`` is localhost, ``0.0.0.0:PORT`` every interface,
    ``[::1]:PORT`` IPv6. WireError for anything else."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise WireError(f"bad --serve address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080 "
                        "(:PORT for this machine only, 0.0.0.0:PORT for every interface)")
    return host.strip("[]") or LOCALHOST, int(port_text)


def _host_names(bound: str) -> frozenset[str]:
    """Names a request's Host may carry besides IP addresses (which DNS rebinding cannot use)."""
    name = socket.gethostname().lower()
    names = {"localhost", name, f"{name}.local", name.split(".")[0]}
    if bound not in WILDCARDS:
        names.add(bound.lower())
    return frozenset(names)


def host_allowed(header: str | None, names: frozenset[str]) -> bool:
    """True when a Host header names this server: an IP literal or one of ``names`` (any port)."""
    if header is None:
        return True  # HTTP/1.0 clients; every browser sends Host, and rebinding needs a browser
    host = header.strip().lower()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    host = host.rstrip(".")
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host in names or host.endswith(".localhost")


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
        if not host_allowed(self.headers.get("Host"), self.server.names):
            self._send(403, "text/plain", b"forbidden: unknown Host (serve with --serve NAME:PORT to use NAME)\n")
            return
        fresh = self._token_given()
        if fresh is None:
            self._send(401, "text/plain", b"token required: open /?token=... or send Authorization: Bearer ...\n")
            return
        if path in ("/", "/index.html"):
            cookie = None
            if fresh and self.server.token:  # a tokened link: the page's own requests then carry the cookie
                cookie = f"{TOKEN_COOKIE}={self.server.token}; HttpOnly; SameSite=Strict; Path=/"
            self._send(200, _CONTENT_TYPES[".html"], _asset(self.server.page), cookie)
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

    def _token_given(self) -> bool | None:
        """Whether the request may proceed: None when a token is required and missing or wrong; True when
        the token came in the URL or a header (``/`` then sets the cookie); False when no token is needed
        or the cookie carried it."""
        token = self.server.token
        if not token:
            return False
        fresh = any(same_token(token, o) for o in offered_tokens(self.path, self.headers))
        if fresh:
            return True
        try:
            jar = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return None
        morsel = jar.get(TOKEN_COOKIE)
        return False if morsel is not None and same_token(token, morsel.value) else None

    def _send(self, code: int, kind: str, body: bytes, cookie: str | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in _SECURITY_HEADERS:
            self.send_header(name, value)
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(body)

    def _events(self) -> None:
        hub = self.server.hub
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        for name, value in _SECURITY_HEADERS:
            self.send_header(name, value)
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

    def __init__(self, address: tuple[str, int], hub: LiveHub, page: str, token: str | None) -> None:
        self.hub = hub
        self.page = page
        self.token = token
        self.names = _host_names(address[0])
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class LiveServer:
    """Serves one page of ``web/`` plus the hub's events on HOST:PORT from a background thread.

    ``token``: when given, every request must carry it (see the module docstring).
    """

    def __init__(self, host: str, port: int, hub: LiveHub, page: str = "stream.html",
                 token: str | None = None) -> None:
        self.hub = hub
        self.token = token
        try:
            self._server = _Server((host, port), hub, page, token)
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
        """The address really bound (``http://0.0.0.0:PORT/`` when serving every interface)."""
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def describe(self) -> str:
        """The URL for a status line, saying when every interface is served and that a token is needed."""
        host, port = self.address
        text = self.url
        if host in WILDCARDS:
            text += f" (every interface: http://{socket.gethostname()}:{port}/ from other machines)"
        return text + self.token_note()

    def token_note(self) -> str:
        """What a status line adds when the page needs a token ("" when it does not)."""
        return " (token required: add ?token=... from the token file)" if self.token else ""

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
    return {"window": p.window, "label": safe_text(p.label, MAX_LABEL), "confidence": round(float(p.confidence), 4),
            "probs": [round(float(x), 4) for x in p.probs],
            "raw_probs": None if raw is None else [round(float(x), 4) for x in raw],
            "t_end_s": p.t_end_s, "dropped": p.dropped, "uncertain": bool(p.uncertain),
            "calibrated": bool(p.calibrated), "source": "device" if p.source == "device" else "host",
            "received": round(received, 3)}


class LivePageSink:
    """The `stream --serve` sink: pushes each window to a :class:`LiveHub` served by a :class:`LiveServer`."""

    def __init__(self, host: str, port: int, labels: Sequence[str], *, title: str = "hartool",
                 counters: Callable[[], dict[str, Any]] | None = None, token: str | None = None) -> None:
        self.labels = [safe_text(label, MAX_LABEL) for label in labels]
        self.title = safe_text(title, MAX_LABEL)
        self.windows = 0
        self.dropped = 0
        self._extra = counters
        self.hub = LiveHub(self._render, self._snapshot, self._counters)
        self.server = LiveServer(host, port, self.hub, page="stream.html", token=token)

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
