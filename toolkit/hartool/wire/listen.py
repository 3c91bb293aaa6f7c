"""Listening byte sources: phones and boards that connect to the host instead of the host opening them.

``--port`` values (see :func:`open_listen_port`):

* ``tcp-listen://HOST:PORT``: a TCP server for one client at a time (HyperIMU over TCP, an ESP32 over
  Wi-Fi). When the client leaves, ``read`` raises :class:`DeviceGone`; ``reopen()`` waits for the next
  client on the same listening socket, which continues the stream (the reader counts it as a reconnect).
  A new client while the current one is silent takes over: a phone that comes back after a Wi-Fi drop is
  not locked out by its own half-open old connection.
* ``udp://HOST:PORT``: datagrams (HyperIMU over UDP), each holding one or more lines; a ``\\n`` is appended
  to a datagram that does not end in one. Datagrams the kernel dropped are counted where Linux tells us.
* ``http://HOST:PORT/PATH``: HTTP POST push (Sensor Logger). A good JSON body becomes one compact JSON line;
  200 answers it. POSTs to another path get 404, unless the URL has no PATH (then any path is taken). A body that is not JSON, or a Sensor-Logger-style object without a non-empty ``payload``,
  gets 400 with the reason and is counted in ``bad_batches``.
* ``mqtt://[USER@]BROKER:PORT/TOPIC`` (``mqtts://`` for TLS): subscribe (paho-mqtt through
  :mod:`hartool.wire.mqtt`); each message payload is one line. A broker that drops us raises
  :class:`DeviceGone`; paho reconnects with backoff and ``reopen()`` returns once it is back.

Threads: the reader thread stays the only owner of the port. TCP and UDP sockets are read directly in
``read`` (select with the port's timeout; TCP flow control and the kernel's UDP buffer do the buffering).
HTTP and MQTT need a thread of their own (the stdlib server, paho's network loop); those threads only put
bytes into a bounded :class:`ByteBuffer` that ``read`` drains with a timeout. What does not fit is counted
(``overflow``) and refused (HTTP 503) rather than blocking the sender or growing without bound.

All these ports have ``listening = True`` (the reader keeps waiting for the sender to come back) and
``counters() -> dict[str, int]`` for the stream summary. A port already in use, or an unreachable broker
without ``reconnect``, raises :class:`WireError` with one line before anything is read.
"""

from __future__ import annotations

import collections
import errno
import json
import os
import select
import socket
import struct
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from hartool.core.errors import WireError
from hartool.wire.sources import DeviceGone

__all__ = [
    "LISTEN_SCHEMES",
    "ByteBuffer",
    "HttpPushPort",
    "MqttSubscribePort",
    "TcpListenPort",
    "UdpPort",
    "check_push_batch",
    "open_listen_port",
]

LISTEN_SCHEMES = ("tcp-listen", "udp", "http", "mqtt", "mqtts")
DEFAULT_BUFFER_BYTES = 8 * 1024 * 1024  # ~40 s of a 200 Hz Sensor Logger stream: room for a slow consumer
MAX_POST_BYTES = 16 * 1024 * 1024
REOPEN_WAIT_S = 0.5  # reopen() waits this long for a sender, then lets the reader's backoff loop retry
SUBSCRIBE_TIMEOUT_S = 5.0
_UDP_RCVBUF = 4 * 1024 * 1024
_SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux: cumulative datagrams dropped by the kernel
# Keys that make a JSON object a Sensor Logger batch, which must then carry a non-empty payload list.
_SENSOR_LOGGER_KEYS = ("payload", "messageId", "sessionId", "deviceId")


# --------------------------------------------------------------------------------------------------------
# Shared pieces


class ByteBuffer:
    """A bounded FIFO of byte chunks between a producer thread and the reader thread, with "gone" markers.

    ``put`` never blocks: a chunk that does not fit is refused and counted. ``mark_gone`` queues a marker
    after the data already buffered, so ``take`` delivers those bytes first and only then reports the end.
    """

    def __init__(self, max_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        self.max_bytes = max_bytes
        self.overflow = 0  # chunks refused because the buffer was full
        self.overflow_bytes = 0
        self._items: collections.deque[bytes | str] = collections.deque()  # str = gone marker (reason)
        self._size = 0
        self._cond = threading.Condition()

    def put(self, data: bytes) -> bool:
        with self._cond:
            if self._size + len(data) > self.max_bytes:
                self.overflow += 1
                self.overflow_bytes += len(data)
                return False
            self._items.append(data)
            self._size += len(data)
            self._cond.notify()
            return True

    def mark_gone(self, reason: str) -> None:
        with self._cond:
            self._items.append(reason)
            self._cond.notify()

    def take(self, n: int, timeout: float) -> bytes | str:
        """Up to ``n`` bytes (``b""`` after ``timeout``), or the reason of a gone marker reached with no bytes."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            out = bytearray()
            while self._items and len(out) < n:
                head = self._items[0]
                if isinstance(head, str):
                    if out:
                        break  # deliver the bytes before the marker first
                    self._items.popleft()
                    return head
                room = n - len(out)
                if len(head) > room:
                    out += head[:room]
                    self._items[0] = head[room:]
                    self._size -= room
                    break
                out += head
                self._size -= len(head)
                self._items.popleft()
            return bytes(out)



def _split_host_port(spec: str, scheme: str, default_port: int | None = None) -> tuple[str, int, str]:
    """(host, port, path) of ``SCHEME://HOST:PORT/PATH``; an empty host means every interface."""
    try:
        parts = urlsplit(spec)
        port = parts.port if parts.port is not None else default_port
    except ValueError as exc:
        raise WireError(f"bad --port {spec!r}: {exc}") from exc
    if port is None:
        raise WireError(f"bad --port {spec!r}: no port number (e.g. {scheme}://0.0.0.0:9000)")
    host = parts.hostname or "0.0.0.0"
    return host, port, parts.path


def _bind_error(spec: str, exc: OSError) -> WireError:
    """One line for a socket that cannot listen, with the usual fix."""
    hints = {
        errno.EADDRINUSE: "another program (or another hartool) listens there; stop it or pick another port",
        errno.EACCES: "ports below 1024 need root; pick a port above 1024",
        errno.EADDRNOTAVAIL: "HOST must be an address of this machine, or 0.0.0.0 for all",
    }
    code = exc.errno if isinstance(exc.errno, int) else None
    detail = f"[Errno {code}] {os.strerror(code)}" if code and code > 0 else str(exc)
    hint = hints.get(code or 0, "")
    return WireError(f"cannot listen on {spec}: {detail}" + (f" ({hint})" if hint else ""))


def _family(host: str, socktype: int) -> tuple[int, tuple[Any, ...]]:
    try:
        info = socket.getaddrinfo(host, None, 0, socktype, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise WireError(f"cannot listen on {host}: unknown host ({exc.strerror})") from exc
    return info[0][0], info[0][4]


# --------------------------------------------------------------------------------------------------------
# tcp-listen://


class _TcpListener:
    """The listening socket and counters shared by a TCP port and the ports its ``reopen()`` returns."""

    def __init__(self, spec: str, host: str, port: int) -> None:
        family, _ = _family(host, socket.SOCK_STREAM)
        try:
            # create_server sets SO_REUSEADDR, so a restarted hartool can bind again at once.
            self.sock = socket.create_server((host, port), family=family, backlog=4)
        except OSError as exc:
            raise _bind_error(spec, exc) from exc
        self.sock.setblocking(False)  # accept() after select() must not hang on a client that already left
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self.takeovers = 0
        self.closed = False

    def accept(self, timeout: float) -> socket.socket | None:
        if self.closed:
            raise WireError(f"tcp-listen://{self.host}:{self.port} is closed")
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return None
        try:
            client, _ = self.sock.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return None  # the client gave up between select and accept
        client.setblocking(True)  # reads are guarded by select(); writes may wait (with their timeout)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections += 1
        return client

    def close(self) -> None:
        self.closed = True
        self.sock.close()


class TcpListenPort:
    """``tcp-listen://HOST:PORT``: one TCP client at a time, read directly by the reader thread.

    Created before any client connects: ``read`` returns ``b""`` until one does. The first client is the
    start of the stream; every later one is a reconnect (``reopen``). Port 0 binds a free port
    (``address`` tells which).
    """

    is_file = False
    listening = True

    def __init__(
        self, host: str, port: int, timeout: float = 0.05, *, _listener: _TcpListener | None = None,
        _client: socket.socket | None = None,
    ) -> None:
        spec = f"tcp-listen://{host}:{port}"
        self._listener = _listener or _TcpListener(spec, host, port)
        self.timeout = timeout
        self.address = (self._listener.host, self._listener.port)
        self.name = f"tcp-listen://{self._listener.host}:{self._listener.port}"
        self._client = _client
        self._gone = False  # read raised DeviceGone: close() then keeps the listener for reopen()
        self._closed = False

    @property
    def eof(self) -> bool:
        return False

    def read(self, n: int) -> bytes:
        if self._closed or self._gone:
            raise DeviceGone(f"{self.name}: closed")
        if self._client is None:
            self._client = self._listener.accept(self.timeout)
            return b""
        client = self._client
        ready, _, _ = select.select([client, self._listener.sock], [], [], self.timeout)
        if client in ready:
            try:
                data = client.recv(n)
            except OSError as exc:  # reset by the peer
                raise self._lose(f"client of {self.name} disconnected ({exc})") from exc
            if not data:
                raise self._lose(f"client of {self.name} disconnected")
            return data
        if ready:
            # Someone else connects while our client is silent: the newest wins (see module docstring).
            self._listener.takeovers += 1
            raise self._lose(f"client of {self.name} replaced by a new connection")
        return b""

    def _lose(self, message: str) -> DeviceGone:
        self._gone = True
        self._close_client()
        return DeviceGone(message)

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def write(self, data: bytes) -> int:
        client = self._client
        if client is None:
            return 0  # nobody connected: a host command has no one to go to
        try:
            client.settimeout(1.0)
            return client.send(data)
        except OSError:
            return 0  # the read side notices the loss and reports it once

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_client()
        if not self._gone:
            self._listener.close()

    def reopen(self) -> TcpListenPort:
        """The same listener with the next client; :class:`WireError` if none came within ``REOPEN_WAIT_S``."""
        client = self._listener.accept(REOPEN_WAIT_S)
        if client is None:
            raise WireError(f"no client connected to {self.name} yet")
        return TcpListenPort(self._listener.host, self._listener.port, self.timeout, _listener=self._listener,
                             _client=client)

    def counters(self) -> dict[str, int]:
        return {"connections": self._listener.connections, "takeovers": self._listener.takeovers}

    def __repr__(self) -> str:
        return f"TcpListenPort({self.name!r})"


# --------------------------------------------------------------------------------------------------------
# udp://


def _grow_receive_buffer(sock: socket.socket) -> None:
    """Ask for a 4 MB kernel buffer: a burst of datagrams waits there while the reader is busy.

    SO_RCVBUF is capped by net.core.rmem_max (often 208 KB); SO_RCVBUFFORCE (Linux, needs CAP_NET_ADMIN,
    e.g. root) is not.
    """
    force = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else None)
    if force is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, _UDP_RCVBUF)
            return
        except OSError:
            pass  # not privileged: the capped request below still helps
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UDP_RCVBUF)


class UdpPort:
    """``udp://HOST:PORT``: every datagram's bytes, newline-terminated, read directly from the socket."""

    is_file = False
    listening = True
    _MAX_DATAGRAM = 65535

    def __init__(self, host: str, port: int, timeout: float = 0.05) -> None:
        spec = f"udp://{host}:{port}"
        family, _ = _family(host, socket.SOCK_DGRAM)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            _grow_receive_buffer(sock)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise _bind_error(spec, exc) from exc
        self._track_drops = False
        if sys.platform.startswith("linux"):
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
                self._track_drops = True
            except OSError:
                pass  # not supported here: drops stay uncounted
        sock.setblocking(False)
        self._sock = sock
        self.timeout = timeout
        self.address = (host, int(sock.getsockname()[1]))
        self.name = f"udp://{host}:{self.address[1]}"
        self.datagrams = 0
        self.overflow = 0
        self._pending = bytearray()

    @property
    def eof(self) -> bool:
        return False

    def read(self, n: int) -> bytes:
        if self._sock.fileno() < 0:
            raise DeviceGone(f"{self.name}: closed")
        if not self._pending:
            ready, _, _ = select.select([self._sock], [], [], self.timeout)
            if not ready:
                return b""
        while len(self._pending) < n and self._recv_one():
            pass
        data = bytes(self._pending[:n])
        del self._pending[:n]
        return data

    def _recv_one(self) -> bool:
        """Append one waiting datagram to the pending bytes; False when none is waiting."""
        try:
            data, anc, _, _ = self._sock.recvmsg(self._MAX_DATAGRAM, socket.CMSG_SPACE(4))
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            raise DeviceGone(f"{self.name}: receive failed ({exc})") from exc
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(value) >= 4:
                self.overflow = struct.unpack("=I", value[:4])[0]  # cumulative count from the kernel
        self.datagrams += 1
        self._pending += data
        if data and not data.endswith(b"\n"):
            self._pending += b"\n"
        return True

    def write(self, data: bytes) -> int:
        return 0  # a UDP sender has no return channel we know of

    def close(self) -> None:
        self._sock.close()

    def counters(self) -> dict[str, int]:
        return {"datagrams": self.datagrams, "overflow": self.overflow}

    def __repr__(self) -> str:
        return f"UdpPort({self.name!r})"


# --------------------------------------------------------------------------------------------------------
# http:// (POST push)


def check_push_batch(body: bytes) -> tuple[bytes | None, str]:
    """(one compact JSON line, "") for a good POST body, or (None, reason) for a bad one."""
    if not body.strip():
        return None, "empty body: POST a JSON object"
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"body is not JSON ({exc})"
    if isinstance(obj, dict) and any(k in obj for k in _SENSOR_LOGGER_KEYS):
        payload = obj.get("payload")
        if not isinstance(payload, list) or not payload:
            return None, "no payload: a Sensor Logger batch needs a non-empty 'payload' list"
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
            port.count("not_found")
            self._reply(404, f"not found: POST to {port.path}")
            return
        body, error = self._body()
        if body is None:
            port.count("bad_batches")
            self._reply(error[0], error[1])
            return
        line, reason = check_push_batch(body)
        if line is None:
            port.count("bad_batches")
            self._reply(400, reason)
        elif not port.buffer.put(line):
            port.count("overflow")
            self._reply(503, "busy: hartool cannot keep up, batch dropped")
        else:
            port.count("batches")
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


class HttpPushPort:
    """``http://HOST:PORT/PATH``: an HTTP server thread whose good POST bodies ``read`` returns as JSON lines."""

    is_file = False
    listening = True

    def __init__(self, host: str, port: int, path: str = "/", timeout: float = 0.05,
                 max_buffer: int = DEFAULT_BUFFER_BYTES) -> None:
        spec = f"http://{host}:{port}{path}"
        family, _ = _family(host, socket.SOCK_STREAM)
        server_cls = type("_PushServerV6" if family == socket.AF_INET6 else "_PushServerV4", (_PushServer,),
                          {"address_family": family})
        try:
            self._server = server_cls((host, port), _PushHandler)
        except OSError as exc:
            raise _bind_error(spec, exc) from exc
        self._server.hartool_port = self
        self.path = "/" + path.strip("/")
        self._any_path = self.path == "/"  # no PATH in the URL: take POSTs to any path (whatever the app uses)
        self.timeout = timeout
        self.buffer = ByteBuffer(max_buffer)
        self.address = (host, int(self._server.server_address[1]))
        self.name = f"http://{host}:{self.address[1]}{self.path}"
        self._counts = {"batches": 0, "bad_batches": 0, "not_found": 0, "overflow": 0}
        self._count_lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"hartool-http {self.name}", daemon=True)
        self._thread.start()
        self._closed = False

    def matches(self, request_path: str) -> bool:
        return self._any_path or "/" + request_path.split("?", 1)[0].strip("/") == self.path

    def count(self, key: str) -> None:
        with self._count_lock:
            self._counts[key] += 1

    @property
    def eof(self) -> bool:
        return False

    def read(self, n: int) -> bytes:
        if self._closed:
            raise DeviceGone(f"{self.name}: closed")
        data = self.buffer.take(n, self.timeout)
        return data if isinstance(data, bytes) else b""

    def write(self, data: bytes) -> int:
        return 0  # HTTP push has no channel back to the phone between requests

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()  # waits for serve_forever to return (<= poll_interval)
        self._server.server_close()
        self._thread.join(2.0)

    def counters(self) -> dict[str, int]:
        with self._count_lock:
            return dict(self._counts)

    def __repr__(self) -> str:
        return f"HttpPushPort({self.name!r})"


# --------------------------------------------------------------------------------------------------------
# mqtt:// (subscribe)


class _MqttSubscription:
    """The paho client, buffer and counters shared by an MQTT port and the ports ``reopen()`` returns."""

    def __init__(self, spec: str, reconnect: bool, max_buffer: int) -> None:
        from hartool.wire import mqtt as wmqtt

        self.url = wmqtt.parse_mqtt_url(spec, allow_wildcards=True)
        self.buffer = ByteBuffer(max_buffer)
        self.counts = {"messages": 0, "overflow": 0, "connections": 0, "broker_disconnects": 0}
        self.connected = threading.Event()
        self.suback = wmqtt.SubscribeAck()
        self.closed = False
        client = wmqtt.make_client(self.url, client_id=f"hartool-sub-{uuid.uuid4().hex[:10]}",
                                   password=wmqtt.read_password())
        client.on_connect = self._on_connect
        client.on_subscribe = self.suback.on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        self.client = client
        wmqtt.connect(client, self.url, wait=not reconnect)
        if not reconnect:
            self.suback.wait(client, self.url, SUBSCRIBE_TIMEOUT_S)

    # paho callbacks (paho's network thread): they only touch the buffer, counters and events.
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            return
        self.counts["connections"] += 1
        client.subscribe(self.url.prefix, qos=1)  # clean session: subscribe on every (re)connection
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        payload = bytes(message.payload)
        if not payload.endswith(b"\n"):
            payload += b"\n"
        if self.buffer.put(payload):
            self.counts["messages"] += 1
        else:
            self.counts["overflow"] += 1

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self.connected.is_set() and not self.closed:
            self.counts["broker_disconnects"] += 1
            self.buffer.mark_gone(f"MQTT broker {self.url.display()} went away ({reason})")
        self.connected.clear()
        self.suback.event.clear()

    def close(self) -> None:
        from hartool.wire import mqtt as wmqtt

        if not self.closed:
            self.closed = True
            wmqtt.disconnect(self.client)


class MqttSubscribePort:
    """``mqtt://[USER@]BROKER:PORT/TOPIC``: each message payload on TOPIC (wildcards allowed) as one line.

    Without ``reconnect`` the broker must answer at once (CONNACK and SUBACK), else :class:`WireError`.
    With it, paho connects in the background with backoff and ``read`` returns ``b""`` meanwhile.
    """

    is_file = False
    listening = True

    def __init__(self, spec: str, timeout: float = 0.05, reconnect: bool = False,
                 max_buffer: int = DEFAULT_BUFFER_BYTES, *, _sub: _MqttSubscription | None = None) -> None:
        self._sub = _sub or _MqttSubscription(spec, reconnect, max_buffer)
        self.timeout = timeout
        self.name = self._sub.url.display()
        self._gone = False
        self._closed = False

    @property
    def eof(self) -> bool:
        return False

    def read(self, n: int) -> bytes:
        if self._closed or self._gone:
            raise DeviceGone(f"{self.name}: closed")
        data = self._sub.buffer.take(n, self.timeout)
        if isinstance(data, str):
            self._gone = True
            raise DeviceGone(data)
        return data

    def write(self, data: bytes) -> int:
        return 0  # the publisher is not listening to us

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._gone:  # after a broker drop the subscription stays for reopen()
            self._sub.close()

    def reopen(self) -> MqttSubscribePort:
        """The same subscription once paho is reconnected; :class:`WireError` if not within ``REOPEN_WAIT_S``."""
        if self._sub.closed:
            raise WireError(f"{self.name}: closed")
        if not self._sub.connected.wait(REOPEN_WAIT_S):
            raise WireError(f"MQTT broker {self.name} is not back yet")
        return MqttSubscribePort(self.name, self.timeout, _sub=self._sub)

    def counters(self) -> dict[str, int]:
        return dict(self._sub.counts, overflow=self._sub.buffer.overflow)

    def __repr__(self) -> str:
        return f"MqttSubscribePort({self.name!r})"


# --------------------------------------------------------------------------------------------------------


def open_listen_port(spec: str, timeout: float = 0.05, reconnect: bool = False) -> (
        TcpListenPort | UdpPort | HttpPushPort | MqttSubscribePort):
    """Open a listening source from a ``--port`` URL whose scheme is in :data:`LISTEN_SCHEMES`.

    Raises :class:`WireError` (one line) for a malformed URL, a port already in use, or (without
    ``reconnect``) an MQTT broker that cannot be reached.
    """
    scheme = spec.split("://", 1)[0].lower()
    if scheme == "tcp-listen":
        host, port, _ = _split_host_port(spec, scheme)
        return TcpListenPort(host, port, timeout)
    if scheme == "udp":
        host, port, _ = _split_host_port(spec, scheme)
        return UdpPort(host, port, timeout)
    if scheme == "http":
        host, port, path = _split_host_port(spec, scheme, default_port=80)
        return HttpPushPort(host, port, path or "/", timeout)
    if scheme in ("mqtt", "mqtts"):
        return MqttSubscribePort(spec, timeout, reconnect)
    raise WireError(f"unknown listening source {spec!r}: use one of " +
                    ", ".join(f"{s}://" for s in LISTEN_SCHEMES))
