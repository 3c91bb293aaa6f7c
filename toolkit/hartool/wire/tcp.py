"""``tcp-listen://HOST:PORT[?hold=S&allow=PEER,...&token-file=PATH]``: a TCP server for one client at a time
(HyperIMU over TCP, an ESP32 over Wi-Fi).

When the client leaves, ``read`` raises :class:`DeviceGone`; ``reopen()`` takes the next client on the same
listening socket, which continues the stream (the reader counts it as a reconnect). One sender per stream:
a second connection while the current client sends is accepted but not read (it waits, its bytes kept by
TCP); once the current client has been silent for ``hold`` seconds the waiting one takes over (a phone that
comes back after a Wi-Fi drop is not locked out by its own half-open old connection). A third is refused
(closed at once). Each is counted and noted with both peers. With a :class:`~hartool.wire.door.PeerPolicy`,
a connection from outside ``allow=`` is closed as it is accepted (``refused_peers``), and a client whose first
line is not the token is closed before any of its bytes reach the stream (``bad_tokens``). The socket is read
directly by the reader thread (select with the port's timeout; TCP flow control does the buffering).
"""

from __future__ import annotations

import select
import socket
import time

from hartool.core.errors import WireError
from hartool.wire.door import HOLD_S, OPEN, PeerPolicy
from hartool.wire.net import REOPEN_WAIT_S, address_family, bind_error
from hartool.wire.port import Counters, DeviceGone, Port, printable

__all__ = ["TcpListenPort"]

_MAX_TOKEN_LINE = 512  # a first line longer than this is not a token


class _TcpListener:
    """The listening socket and counters shared by a TCP port and the ports its ``reopen()`` returns."""

    def __init__(self, spec: str, host: str, port: int, policy: PeerPolicy) -> None:
        family, _ = address_family(host, socket.SOCK_STREAM)
        try:
            # create_server sets SO_REUSEADDR, so a restarted hartool can bind again at once.
            self.sock = socket.create_server((host, port), family=family, backlog=4)
        except OSError as exc:
            raise bind_error(spec, exc) from exc
        self.sock.setblocking(False)  # accept() after select() must not hang on a client that already left
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.counts = Counters("connections", "takeovers", "waiting_connections", "refused_connections",
                               "client_errors", *policy.counter_names())
        self.policy = policy
        self.waiting: socket.socket | None = None  # a second client, not read until it takes over
        self.closed = False

    def accept(self, timeout: float) -> socket.socket | None:
        if self.closed:
            raise WireError(f"tcp-listen://{self.host}:{self.port} is closed")
        if self.waiting is not None:
            client, self.waiting = self.waiting, None
            return client
        return self.take(timeout)

    def take(self, timeout: float) -> socket.socket | None:
        """The next connection from the backlog (None if none came within ``timeout``)."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return None
        try:
            client, address = self.sock.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return None  # the client gave up between select and accept
        if not self.policy.allows(address[0]):
            self.counts.refuse("refused_peers", f"tcp-listen://{self.host}:{self.port}: refused "
                                                f"{_peer_of(client)}: not in allow=")
            client.close()
            return None
        client.setblocking(True)  # reads are guarded by select(); writes may wait (with their timeout)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.counts.add("connections")
        return client

    def close(self) -> None:
        self.closed = True
        if self.waiting is not None:
            self.waiting.close()
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
        self, host: str, port: int, timeout: float = 0.05, *, hold_s: float = HOLD_S, policy: PeerPolicy = OPEN,
        _listener: _TcpListener | None = None, _client: socket.socket | None = None,
    ) -> None:
        listener = _listener or _TcpListener(f"tcp-listen://{host}:{port}", host, port, policy)
        super().__init__(f"tcp-listen://{listener.host}:{listener.port}", timeout, listener.counts)
        self._listener = listener
        self.address = (listener.host, listener.port)
        self.hold_s = hold_s
        self._client = _client
        self.peer = _peer_of(_client)
        self._heard = time.monotonic()  # when the client last sent something (or connected)
        self._gone = False  # read raised DeviceGone: close() then keeps the listener for reopen()
        self._closed = False
        self._authed = listener.policy.token is None  # the client's first line was the token (or none is needed)
        self._first = bytearray()  # the first line, while it arrives

    def read(self, n: int) -> bytes:
        if self._closed or self._gone:
            raise DeviceGone(f"{self.name}: closed")
        if self._client is None:
            self._client = self._listener.accept(self.timeout)
            self.peer, self._heard = _peer_of(self._client), time.monotonic()
            self._authed = self._listener.policy.token is None
            return b""
        client = self._client
        ready, _, _ = select.select([client, self._listener.sock], [], [], self.timeout)
        if client in ready:
            try:
                data = client.recv(n)
            except OSError as exc:  # reset by the peer: counted, and the stream goes on with the next client
                self.tally.add("client_errors")
                raise self._lose(f"client {self.peer} of {self.name} disconnected ({exc})") from exc
            if not self._authed:
                return self._first_line(data)
            if not data:
                raise self._lose(f"client {self.peer} of {self.name} disconnected")
            self._heard = time.monotonic()
            return data
        if self._listener.sock in ready:
            self._knock()
        waiting = self._listener.waiting
        if waiting is not None and time.monotonic() - self._heard >= self.hold_s:
            self.tally.refuse("takeovers", f"{self.name}: {_peer_of(waiting)} took over from {self.peer} "
                                           f"(silent for {self.hold_s:g} s)")
            raise self._lose(f"client {self.peer} of {self.name} replaced by {_peer_of(waiting)}")
        return b""

    def _first_line(self, data: bytes) -> bytes:
        """A new client's first line, held until complete: the token admits it (what follows is the stream's
        first bytes); anything else closes it, and the port waits for the next client."""
        self._first += data
        line, sep, rest = bytes(self._first).partition(b"\n")
        if data and not sep and len(self._first) <= _MAX_TOKEN_LINE:
            return b""
        self._first = bytearray()
        if sep and self._listener.policy.token_ok([line.strip()]):
            self._authed = True
            self._heard = time.monotonic()
            return rest
        self.tally.refuse("bad_tokens", f"{self.name}: refused {self.peer}: its first line is not the token")
        self._close_client()
        return b""

    def _knock(self) -> None:
        """A new connection while a client streams: it waits (one at most); any more are refused."""
        listener = self._listener
        newcomer = listener.take(0)
        if newcomer is None:
            return
        if listener.waiting is not None:
            self.tally.refuse("refused_connections", f"{self.name}: refused {_peer_of(newcomer)}: "
                                                     f"{self.peer} streams and {_peer_of(listener.waiting)} waits")
            newcomer.close()
        else:
            listener.waiting = newcomer
            self.tally.refuse("waiting_connections", f"{self.name}: {_peer_of(newcomer)} waits: {self.peer} "
                                                     f"is streaming (takes over after {self.hold_s:g} s of silence)")

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
        return TcpListenPort(self._listener.host, self._listener.port, self.timeout, hold_s=self.hold_s,
                             _listener=self._listener, _client=client)


def _peer_of(sock: socket.socket | None) -> str:
    """``HOST:PORT`` of a connected socket's peer, for log lines."""
    if sock is None:
        return "nobody"
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "a client that already left"
    return f"{printable(host)}:{port}"
