"""``http://HOST:PORT/PATH``: HTTP POST push (Sensor Logger).

A good JSON body becomes one compact JSON line; 200 answers it. POSTs to another path get 404, unless the
URL has no PATH (then any path is taken). A body that is not JSON, or one an app schema refuses (a Sensor
Logger object without a non-empty ``payload``), gets 400 with the reason and is counted in ``bad_batches``.
The stdlib server runs in a thread of its own that only puts bytes into a bounded :class:`ByteBuffer`,
which ``read`` drains with a timeout; what does not fit is counted (``overflow``) and refused (503).
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hartool.wire.apps.registry import refusal
from hartool.wire.net import DEFAULT_BUFFER_BYTES, ByteBuffer, address_family, bind_error
from hartool.wire.port import Counters, DeviceGone, Port

__all__ = ["MAX_POST_BYTES", "HttpPushPort", "check_push_batch"]

MAX_POST_BYTES = 16 * 1024 * 1024


def check_push_batch(body: bytes) -> tuple[bytes | None, str]:
    """(one compact JSON line, "") for a good POST body, or (None, reason) for a bad one."""
    if not body.strip():
        return None, "empty body: POST a JSON object"
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"body is not JSON ({exc})"
    why = refusal(obj)
    if why is not None:
        return None, why
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n", ""


class _PushServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hartool_port: HttpPushPort


class _PushHandler(BaseHTTPRequestHandler):
    """Answers POSTs to the port's path; everything it accepts goes to the port's buffer as one line."""

    protocol_version = "HTTP/1.1"  # keep-alive: a phone pushing every 100 ms reuses its connection
    server_version = "hartool"
    timeout = 60  # an idle kept-alive connection ends after a minute (its handler thread with it)
    server: _PushServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        port = self.server.hartool_port
        if not port.matches(self.path):
            port.tally.add("not_found")
            self._reply(404, f"not found: POST to {port.path}")
            return
        body, error = self._body()
        if body is None:
            port.tally.add("bad_batches")
            self._reply(error[0], error[1])
            return
        line, reason = check_push_batch(body)
        if line is None:
            port.tally.add("bad_batches")
            self._reply(400, reason)
        elif not port.buffer.put(line):
            port.tally.add("overflow")
            self._reply(503, "busy: hartool cannot keep up, batch dropped")
        else:
            port.tally.add("batches")
            self._reply(200, "ok")

    def do_GET(self) -> None:  # noqa: N802
        self._reply(200, f"hartool is listening: POST JSON batches to {self.server.hartool_port.path}")

    def _body(self) -> tuple[bytes | None, tuple[int, str]]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked_body()
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return None, (411, "Content-Length required")
        if not 0 <= length <= MAX_POST_BYTES:
            self.close_connection = True  # the rest of a huge body is not read
            return None, (413, f"body over {MAX_POST_BYTES} bytes")
        return self.rfile.read(length), (200, "")

    def _chunked_body(self) -> tuple[bytes | None, tuple[int, str]]:
        body = bytearray()
        while True:
            try:
                size = int(self.rfile.readline(64).split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                return None, (400, "bad chunked encoding")
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return bytes(body), (200, "")
            if len(body) + size > MAX_POST_BYTES:
                self.close_connection = True
                return None, (413, f"body over {MAX_POST_BYTES} bytes")
            body += self.rfile.read(size)
            self.rfile.readline(8)  # CRLF after the chunk

    def _reply(self, code: int, text: str) -> None:
        data = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass  # library code never prints; the counters tell what happened


class HttpPushPort(Port):
    """``http://HOST:PORT/PATH``: an HTTP server thread whose good POST bodies ``read`` returns as JSON lines."""

    listening = True

    def __init__(self, host: str, port: int, path: str = "/", timeout: float = 0.05,
                 max_buffer: int = DEFAULT_BUFFER_BYTES) -> None:
        spec = f"http://{host}:{port}{path}"
        family, _ = address_family(host, socket.SOCK_STREAM)
        server_cls = type("_PushServerV6" if family == socket.AF_INET6 else "_PushServerV4", (_PushServer,),
                          {"address_family": family})
        try:
            self._server = server_cls((host, port), _PushHandler)
        except OSError as exc:
            raise bind_error(spec, exc) from exc
        self._server.hartool_port = self
        self.path = "/" + path.strip("/")
        self._any_path = self.path == "/"  # no PATH in the URL: take POSTs to any path (whatever the app uses)
        self.buffer = ByteBuffer(max_buffer)
        self.address = (host, int(self._server.server_address[1]))
        super().__init__(f"http://{host}:{self.address[1]}{self.path}", timeout,
                         Counters("batches", "bad_batches", "not_found", "overflow"))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"hartool-http {self.name}", daemon=True)
        self._thread.start()
        self._closed = False

    def matches(self, request_path: str) -> bool:
        return self._any_path or "/" + request_path.split("?", 1)[0].strip("/") == self.path

    def read(self, n: int) -> bytes:
        if self._closed:
            raise DeviceGone(f"{self.name}: closed")
        data = self.buffer.take(n, self.timeout)
        return data if isinstance(data, bytes) else b""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()  # waits for serve_forever to return (<= poll_interval)
        self._server.server_close()
        self._thread.join(2.0)
