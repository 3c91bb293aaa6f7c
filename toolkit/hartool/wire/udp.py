"""``udp://HOST:PORT[?hold=S&allow=PEER,...]``: datagrams (HyperIMU over UDP), each holding one or more lines.

One sender per stream: datagrams from another address while the current sender was heard within ``hold``
seconds are dropped at the door (counted in ``refused_datagrams``, the first noted with both addresses);
after that the new address takes over (``takeovers``). With ``allow=``, datagrams from other addresses are
dropped before anything else (``refused_peers``; a datagram carries no token).

A ``\\n`` is appended to a datagram that does not end in one. The socket is read directly by the reader
thread; the kernel's receive buffer (grown to 4 MB where allowed) holds bursts, and datagrams the kernel
dropped are counted (``overflow``) where Linux tells us.
"""

from __future__ import annotations

import select
import socket
import struct
import sys

from hartool.wire.door import HOLD_S, OPEN, PeerPolicy, SenderGate
from hartool.wire.net import address_family, bind_error
from hartool.wire.port import Counters, DeviceGone, Port, printable

__all__ = ["UdpPort"]

_UDP_RCVBUF = 4 * 1024 * 1024
_SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux: cumulative datagrams dropped by the kernel


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


class UdpPort(Port):
    """``udp://HOST:PORT``: every datagram's bytes, newline-terminated, read directly from the socket."""

    listening = True
    _MAX_DATAGRAM = 65535

    def __init__(self, host: str, port: int, timeout: float = 0.05, *, hold_s: float = HOLD_S,
                 policy: PeerPolicy = OPEN) -> None:
        spec = f"udp://{host}:{port}"
        family, _ = address_family(host, socket.SOCK_DGRAM)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            _grow_receive_buffer(sock)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise bind_error(spec, exc) from exc
        self._track_drops = False
        if sys.platform.startswith("linux"):
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
                self._track_drops = True
            except OSError:
                pass  # not supported here: drops stay uncounted
        sock.setblocking(False)
        self._sock = sock
        self.address = (host, int(sock.getsockname()[1]))
        super().__init__(f"udp://{host}:{self.address[1]}", timeout,
                         Counters("datagrams", "overflow", "refused_datagrams", "takeovers", *policy.counter_names()))
        self._gate = SenderGate(hold_s)
        self._policy = policy
        self._pending = bytearray()

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
            data, anc, _, addr = self._sock.recvmsg(self._MAX_DATAGRAM, socket.CMSG_SPACE(4))
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            raise DeviceGone(f"{self.name}: receive failed ({exc})") from exc
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(value) >= 4:
                self.tally.set("overflow", struct.unpack("=I", value[:4])[0])  # cumulative, from the kernel
        if not self._policy.allows(addr[0]):
            self.tally.refuse("refused_peers", f"{self.name}: dropped datagrams from {printable(addr[0])}:{addr[1]}: "
                                               "not in allow=")
            return True
        if not self._admit(f"{printable(addr[0])}:{addr[1]}"):
            return True
        self.tally.add("datagrams")
        self._pending += data
        if data and not data.endswith(b"\n"):
            self._pending += b"\n"
        return True

    def _admit(self, sender: str) -> bool:
        admitted, other = self._gate.admit(sender)
        if not admitted:
            self.tally.refuse("refused_datagrams", f"{self.name}: dropped datagrams from {sender}: "
                                                   f"{other} is streaming")
        elif other is not None:
            self.tally.refuse("takeovers", f"{self.name}: {sender} took over from {other}")
        if admitted:
            self.peer = sender
        return admitted

    def close(self) -> None:
        self._sock.close()
