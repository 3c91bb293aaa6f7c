"""What the listening transports share: the bounded hand-off buffer between a server thread and the reader,
``SCHEME://HOST:PORT/PATH`` parsing, and one-line bind errors."""

from __future__ import annotations

import collections
import errno
import os
import socket
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hartool.core.errors import WireError
from hartool.wire.door import PeerPolicy, read_token
from hartool.wire.port import Counters, DeviceGone, Port

__all__ = [
    "DEFAULT_BUFFER_BYTES",
    "REOPEN_WAIT_S",
    "BufferedPort",
    "ByteBuffer",
    "address_family",
    "bind_error",
    "split_host_port",
    "split_options",
]

DEFAULT_BUFFER_BYTES = 8 * 1024 * 1024  # ~40 s of a 200 Hz Sensor Logger stream: room for a slow consumer
REOPEN_WAIT_S = 0.5  # reopen() waits this long for a sender, then lets the reader's backoff loop retry


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



def split_host_port(spec: str, scheme: str, default_port: int | None = None) -> tuple[str, int, str]:
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


def bind_error(spec: str, exc: OSError) -> WireError:
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


def address_family(host: str, socktype: int) -> tuple[int, tuple[Any, ...]]:
    try:
        info = socket.getaddrinfo(host, None, 0, socktype, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise WireError(f"cannot listen on {host}: unknown host ({exc.strerror})") from exc
    return info[0][0], info[0][4]


def split_options(spec: str) -> tuple[str, dict[str, Any]]:
    """(the URL without its query, the door's keyword arguments from it). Known options:

    * ``hold=S``: how many seconds a silent sender keeps its stream before another may take over (``hold_s``);
    * ``allow=PEER[,PEER]``: only these IP addresses or networks may send (``policy``);
    * ``token-file=PATH``: senders must present the token in this file's first line (``policy``).

    Anything else, or a bad value, is a one-line :class:`WireError`.
    """
    base, _, query = spec.partition("?")
    kwargs: dict[str, Any] = {}
    allow, token = None, None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "hold":
            kwargs["hold_s"] = _hold_seconds(spec, value)
        elif key == "allow":
            allow = PeerPolicy.parse_allow(value)
        elif key == "token-file":
            token = read_token(value)
        else:
            raise WireError(f"bad --port {spec!r}: unknown option {key!r} "
                            "(known: hold=SECONDS, allow=PEER[,PEER], token-file=PATH)")
    if allow is not None or token is not None:
        kwargs["policy"] = PeerPolicy(allow, token)
    return base, kwargs


def _hold_seconds(spec: str, value: str) -> float:
    try:
        hold = float(value)
    except ValueError:
        hold = -1.0
    if not 0 <= hold <= 3600:
        raise WireError(f"bad --port {spec!r}: hold must be 0..3600 seconds")
    return hold


class BufferedPort(Port):
    """A port whose bytes a server thread puts into a shared :class:`ByteBuffer` (HTTP push, MQTT).

    A gone marker in the buffer (a takeover, a broker drop) ends this port with :class:`DeviceGone`; the
    shared state stays for ``reopen()``. Only a final ``close()`` (not after a drop) calls ``release()``.
    """

    listening = True
    reopenable = True
    buffered = True

    def __init__(self, name: str, timeout: float, buffer: ByteBuffer, counters: Counters) -> None:
        super().__init__(name, timeout, counters)
        self.buffer = buffer
        self._gone = False
        self._closed = False

    def read(self, n: int) -> bytes:
        if self._closed or self._gone:
            raise DeviceGone(f"{self.name}: closed")
        data = self.buffer.take(n, self.timeout)
        if isinstance(data, str):
            self._gone = True
            raise DeviceGone(data)
        return data

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._gone:
            self.release()

    def release(self) -> None:
        """Stop the shared server thread / client (the stream is over)."""
        raise NotImplementedError
