"""``http://HOST:PORT/PATH[?hold=S&allow=PEER,...&token-file=PATH]``: HTTP POST push (Sensor Logger, or any
script POSTing JSON).

Every body is checked at the door, on its own (:func:`hartool.wire.door.read_message`): it must be one JSON
document (or a list) of a known app schema, from the stream's one sender. What is accepted (200) becomes one
compact JSON line for the decoder and is classified; nothing is dropped after the 200. Refusals say why:
404 (another path, unless the URL has no PATH), 411 (no length), 413 (over ``MAX_BODY_BYTES``, refused
before the body is read), 415 (a content type a web page can send cross-origin without asking, or not
JSON), 400 (not JSON, no known schema, a Sensor Logger batch without payload), 409 (another sender while
the current one was heard within ``hold`` seconds; after that the newcomer takes over and the stream
restarts), 503 (the buffer is full or too many large bodies are in flight; retry). With a
:class:`~hartool.wire.door.PeerPolicy`, a peer outside ``allow=`` gets 403 and a request without the token
(``?token=``, an ``X-Hartool-Token`` or ``Authorization: Bearer`` header) 401, before anything else of the
request is read. Each kind is counted and its first occurrence noted with the peer's address.

The stdlib server runs in threads of its own that only put bytes into a bounded :class:`ByteBuffer`, which
``read`` drains with a timeout; the reader thread waits for its consumer rather than dropping what was
accepted, so a full buffer pushes back on the phone (503) instead.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hartool.wire.batch import DEFAULT_CHANNEL_NAMES
from hartool.wire.door import HOLD_S, OPEN, Message, PeerPolicy, SenderGate, offered_tokens, read_message
from hartool.wire.jsoncodec import MAX_LINE_BYTES
from hartool.wire.net import DEFAULT_BUFFER_BYTES, BufferedPort, ByteBuffer, address_family, bind_error
from hartool.wire.port import Counters, printable

__all__ = ["MAX_BODY_BYTES", "HttpPushPort"]

#: The one size limit of a body: what the JSON decoder takes as one line.
MAX_BODY_BYTES = MAX_LINE_BYTES
#: Bodies above this size need one of ``_LARGE_SLOTS`` to be read, so a burst of big POSTs cannot eat memory.
LARGE_BODY_BYTES = 256 * 1024
_LARGE_SLOTS = 2
# What a browser sends cross-origin without a CORS preflight: never a phone app's JSON push.
_SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
_COUNTERS = ("batches", "bad_batches", "wrong_schema", "bad_messages", "refused_senders", "takeovers",
             "too_large", "not_found", "overflow", "client_errors")


class _PushServer(ThreadingHTTPServer):
    """The server, its buffer, counters and sender gate, shared by the port and the ports ``reopen()`` returns."""

    daemon_threads = True
    block_on_close = False
    path: str
    any_path: bool
    buffer: ByteBuffer
    tally: Counters
    gate: SenderGate
    channel_names: Sequence[str]
    large: threading.BoundedSemaphore
    policy: PeerPolicy

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets or sends garbage is counted, never printed as a traceback."""
        self.tally.refuse("client_errors", f"HTTP client {printable(client_address[0])}: connection error")


class _PushHandler(BaseHTTPRequestHandler):
    """Answers POSTs to the port's path; what it accepts goes to the buffer as one line."""

    protocol_version = "HTTP/1.1"  # keep-alive: a phone pushing every 100 ms reuses its connection
    server_version = "hartool"
    timeout = 60  # an idle kept-alive connection ends after a minute (its handler thread with it)
    server: _PushServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        peer = printable(self.client_address[0])
        if not self._door_open():
            return
        if not (srv.any_path or "/" + self.path.split("?", 1)[0].strip("/") == srv.path):
            self.close_connection = True  # the body is not read: the connection cannot carry another request
            self._refuse("not_found", 404, f"not found: POST to {srv.path}")
            return
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype in _SIMPLE_TYPES:
            self.close_connection = True
            self._refuse("bad_messages", 415, f"Content-Type {ctype} refused: POST application/json")
            return
        body = self._body()
        if body is None:
            return
        msg = read_message(body, srv.channel_names, peer, text_ok=False)
        if not isinstance(msg, Message):
            self._refuse(msg.counter, msg.status, msg.reason)
            return
        self._admit(msg)

    def _admit(self, msg: Message) -> None:
        srv = self.server
        if len(msg.data) > MAX_LINE_BYTES:  # the compact line the decoder gets: over its limit it would be lost
            self._refuse("too_large", 413, f"batch over the limit of {MAX_BODY_BYTES} bytes")
            return
        with srv.gate.lock:  # admissions and buffer order agree; no network I/O while holding it
            admitted, other = srv.gate.admit(msg.sender)
            if admitted and other is not None:
                srv.tally.refuse("takeovers", f"{msg.sender} took over from {other} (silent {srv.gate.hold_s:g} s)")
                srv.buffer.mark_gone(f"{msg.sender} took over from {other}")
            stored = admitted and srv.buffer.put(msg.data)
        if not admitted:
            self._refuse("refused_senders", 409, f"{msg.sender} refused: {other} is streaming here")
        elif not stored:
            self._refuse("overflow", 503, "busy: hartool cannot keep up, retry")
        else:
            srv.tally.add("batches")
            self._reply(200, "ok")

    def do_GET(self) -> None:  # noqa: N802
        if self._door_open():
            self._reply(200, f"hartool is listening: POST JSON batches to {self.server.path}")

    def _door_open(self) -> bool:
        """``allow=`` and the token, checked before anything else of the request (a refused body is not read)."""
        policy = self.server.policy
        if not policy.allows(self.client_address[0]):
            self.close_connection = True
            self._refuse("refused_peers", 403, "not in allow=")
            return False
        if policy.token is None:
            return True
        if policy.token_ok(offered_tokens(self.path, self.headers)):
            return True
        self.close_connection = True
        self._refuse("bad_tokens", 401, "token required (?token=, X-Hartool-Token or Authorization: Bearer)")
        return False

    def _refuse(self, counter: str, code: int, reason: str) -> None:
        self.server.tally.refuse(counter, f"HTTP {code} to {printable(self.client_address[0])}: {reason}")
        self._reply(code, reason)

    def _body(self) -> bytes | None:
        """The body (None once refused): its size is checked before any of it is read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked_body()
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._refuse("bad_messages", 411, "Content-Length required")
            return None
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True  # the rest of a huge body is not read
            self._refuse("too_large", 413, f"body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
            return None
        if length <= LARGE_BODY_BYTES:
            return self.rfile.read(length)
        if not self.server.large.acquire(blocking=False):
            self.close_connection = True
            self._refuse("overflow", 503, "busy: too many large bodies at once, retry")
            return None
        try:
            return self.rfile.read(length)
        finally:
            self.server.large.release()

    def _chunked_body(self) -> bytes | None:
        """A chunked body, refused (413) as soon as it grows over the limit; a large one needs a slot."""
        body = bytearray()
        slot = False
        try:
            while True:
                try:
                    size = int(self.rfile.readline(64).split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    self._refuse("bad_messages", 400, "bad chunked encoding")
                    return None
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass  # trailers
                    return bytes(body)
                if len(body) + size > MAX_BODY_BYTES:
                    self.close_connection = True
                    self._refuse("too_large", 413, f"body over the limit of {MAX_BODY_BYTES} bytes")
                    return None
                if len(body) + size > LARGE_BODY_BYTES and not slot:
                    slot = self.server.large.acquire(blocking=False)
                    if not slot:
                        self.close_connection = True
                        self._refuse("overflow", 503, "busy: too many large bodies at once, retry")
                        return None
                body += self.rfile.read(size)
                self.rfile.readline(8)  # CRLF after the chunk
        finally:
            if slot:
                self.server.large.release()

    def _reply(self, code: int, text: str) -> None:
        data = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass  # library code never prints; the counters tell what happened


def _serve(host: str, port: int, path: str, max_buffer: int, hold_s: float, channel_names: Sequence[str],
           policy: PeerPolicy) -> tuple[_PushServer, threading.Thread]:
    spec = f"http://{host}:{port}{path}"
    family, _ = address_family(host, socket.SOCK_STREAM)
    server_cls = type("_PushServerV6" if family == socket.AF_INET6 else "_PushServerV4", (_PushServer,),
                      {"address_family": family})
    try:
        server = server_cls((host, port), _PushHandler)
    except OSError as exc:
        raise bind_error(spec, exc) from exc
    server.path = "/" + path.strip("/")
    server.any_path = server.path == "/"  # no PATH in the URL: take POSTs to any path (whatever the app uses)
    server.buffer = ByteBuffer(max_buffer)
    server.tally = Counters(*_COUNTERS, *policy.counter_names())
    server.policy = policy
    server.gate = SenderGate(hold_s)
    server.channel_names = tuple(channel_names)
    server.large = threading.BoundedSemaphore(_LARGE_SLOTS)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name=f"hartool-http {spec}", daemon=True)
    thread.start()
    return server, thread


class HttpPushPort(BufferedPort):
    """``http://HOST:PORT/PATH``: an HTTP server thread whose accepted POST bodies ``read`` returns as JSON lines.

    A takeover by another sender ends this port (:class:`DeviceGone`); ``reopen()`` continues on the same
    server with a fresh decoder.
    """

    def __init__(self, host: str, port: int, path: str = "/", timeout: float = 0.05,
                 max_buffer: int = DEFAULT_BUFFER_BYTES, *, hold_s: float = HOLD_S,
                 channel_names: Sequence[str] = DEFAULT_CHANNEL_NAMES, policy: PeerPolicy = OPEN,
                 _shared: tuple[_PushServer, threading.Thread] | None = None) -> None:
        self._shared = _shared or _serve(host, port, path, max_buffer, hold_s, channel_names, policy)
        server = self._shared[0]
        self.path = server.path
        self.address = (host, int(server.server_address[1]))
        super().__init__(f"http://{host}:{self.address[1]}{self.path}", timeout, server.buffer, server.tally)

    def release(self) -> None:
        server, thread = self._shared
        server.shutdown()  # waits for serve_forever to return (<= poll_interval)
        server.server_close()
        thread.join(2.0)

    def reopen(self) -> HttpPushPort:
        """The same server, for the sender that took over."""
        host, port = self.address
        return HttpPushPort(host, port, self.path, self.timeout, _shared=self._shared)
