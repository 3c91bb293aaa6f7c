"""``tcp-listen://HOST:PORT``: a TCP server for one client at a time (HyperIMU over TCP, an ESP32 over Wi-Fi).

When the client leaves, ``read`` raises :class:`DeviceGone`; ``reopen()`` waits for the next client on the
same listening socket, which continues the stream (the reader counts it as a reconnect). A new client while
the current one is silent takes over: a phone that comes back after a Wi-Fi drop is not locked out by its
own half-open old connection. The socket is read directly by the reader thread (select with the port's
timeout; TCP flow control does the buffering).
"""

from __future__ import annotations

import select
import socket

from hartool.core.errors import WireError
from hartool.wire.net import REOPEN_WAIT_S, address_family, bind_error
from hartool.wire.port import Counters, DeviceGone, Port

__all__ = ["TcpListenPort"]


class _TcpListener:
    """The listening socket and counters shared by a TCP port and the ports its ``reopen()`` returns."""

    def __init__(self, spec: str, host: str, port: int) -> None:
        family, _ = address_family(host, socket.SOCK_STREAM)
        try:
            # create_server sets SO_REUSEADDR, so a restarted hartool can bind again at once.
            self.sock = socket.create_server((host, port), family=family, backlog=4)
        except OSError as exc:
            raise bind_error(spec, exc) from exc
        self.sock.setblocking(False)  # accept() after select() must not hang on a client that already left
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.counts = Counters("connections", "takeovers")
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
        self.counts.add("connections")
        return client

    def close(self) -> None:
        self.closed = True
        self.sock.close()


class TcpListenPort(Port):
    """``tcp-listen://HOST:PORT``: one TCP client at a time, read directly by the reader thread.

    Created before any client connects: ``read`` returns ``b""`` until one does. The first client is the
    start of the stream; every later one is a reconnect (``reopen``). Port 0 binds a free port
    (``address`` tells which).
    """

    listening = True
    reopenable = True

    def __init__(
        self, host: str, port: int, timeout: float = 0.05, *, _listener: _TcpListener | None = None,
        _client: socket.socket | None = None,
    ) -> None:
        listener = _listener or _TcpListener(f"tcp-listen://{host}:{port}", host, port)
        super().__init__(f"tcp-listen://{listener.host}:{listener.port}", timeout, listener.counts)
        self._listener = listener
        self.address = (listener.host, listener.port)
        self._client = _client
        self._gone = False  # read raised DeviceGone: close() then keeps the listener for reopen()
        self._closed = False

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
            self.tally.add("takeovers")
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
