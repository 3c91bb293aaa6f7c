"""Sending simulated packets the way the real senders do: a TCP or UDP client, HTTP POSTs, MQTT publishes.

Each ``send_*`` function plays a list of :class:`~hartool.sim.apps.Packet` at real time x ``speed`` (0: as
fast as the transport takes them), stops early when ``stop`` is set, and returns :class:`SendStats`.
:class:`SenderThread` runs one in the background (tests, ``hartool simulate``).

The TCP client retries its connection for ``connect_timeout_s`` (the host may start listening after the
phone), and ``drop_every`` closes and reopens the connection every N samples, like a phone whose Wi-Fi
drops: a ``tcp-listen://`` host must continue the stream over the new connection.
"""

from __future__ import annotations

import http.client
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hartool.core.errors import WireError
from hartool.sim.apps import Packet

__all__ = ["SendStats", "SenderThread", "publish_mqtt", "post_http", "send_tcp", "send_udp"]

_MAX_BURST_BYTES = 64 * 1024  # packets due together are joined up to this size (one send call)
_RETRY_S = 0.1


@dataclass
class SendStats:
    """What a sender did: packets and samples delivered to the transport, reconnects, HTTP answers."""

    packets: int = 0
    samples: int = 0
    bytes: int = 0
    connections: int = 0
    http_status: dict[int, int] = field(default_factory=dict)
    stopped: bool = False


def _paced(packets: Sequence[Packet], speed: float, stop: threading.Event) -> Iterator[list[Packet]]:
    """Groups of packets as they fall due (device time / speed after the start); ends early on ``stop``."""
    fast = speed == 0 or math.isinf(speed)
    t0 = time.monotonic()
    i = 0
    while i < len(packets) and not stop.is_set():
        if not fast:
            wait = t0 + packets[i].t_s / speed - time.monotonic()
            if wait > 0 and stop.wait(min(wait, 0.5)):
                return
            if wait > 0.5:
                continue
        now_t = math.inf if fast else (time.monotonic() - t0) * speed
        group, size = [], 0
        while i < len(packets) and packets[i].t_s <= now_t and size < _MAX_BURST_BYTES:
            group.append(packets[i])
            size += len(packets[i].data)
            i += 1
        if group:
            yield group


def _count(stats: SendStats, group: list[Packet]) -> None:
    stats.packets += len(group)
    stats.samples += sum(p.samples for p in group)
    stats.bytes += sum(len(p.data) for p in group)


def _connect_tcp(host: str, port: int, timeout_s: float, stop: threading.Event) -> socket.socket:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=5.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            if time.monotonic() >= deadline or stop.wait(_RETRY_S):
                raise WireError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc


def _split_at_drops(group: list[Packet], drop_every: int | None, since_drop: int) -> Iterator[list[Packet]]:
    """``group`` in pieces that end where a connection drop is due (every ``drop_every`` samples)."""
    if not drop_every:
        yield group
        return
    piece: list[Packet] = []
    for p in group:
        if piece and since_drop >= drop_every:
            yield piece
            piece = []
        if since_drop >= drop_every:
            since_drop = 0
        piece.append(p)
        since_drop += p.samples
    if piece:
        yield piece


def send_tcp(packets: Sequence[Packet], host: str, port: int, speed: float = 1.0,
             stop: threading.Event | None = None, *, connect_timeout_s: float = 10.0,
             drop_every: int | None = None) -> SendStats:
    """Stream ``packets`` as a TCP client of ``host:port`` (HyperIMU TCP, an MCU on Wi-Fi)."""
    stop = stop or threading.Event()
    stats = SendStats()
    sock = _connect_tcp(host, port, connect_timeout_s, stop)
    stats.connections = 1
    since_drop = 0
    try:
        for group in _paced(packets, speed, stop):
            for chunk in _split_at_drops(group, drop_every, since_drop):
                if drop_every and since_drop >= drop_every:
                    sock.close()  # a Wi-Fi drop: the host sees the end of this connection
                    sock = _connect_tcp(host, port, connect_timeout_s, stop)
                    stats.connections += 1
                    since_drop = 0
                try:
                    sock.sendall(b"".join(p.data for p in chunk))
                except OSError as exc:
                    raise WireError(f"connection to {host}:{port} lost: {exc.strerror or exc}") from exc
                _count(stats, chunk)
                since_drop += sum(p.samples for p in chunk)
    finally:
        sock.close()
    stats.stopped = stop.is_set()
    return stats


def send_udp(packets: Sequence[Packet], host: str, port: int, speed: float = 1.0,
             stop: threading.Event | None = None) -> SendStats:
    """Send each packet as one datagram to ``host:port`` (HyperIMU UDP). UDP never waits for a receiver."""
    stop = stop or threading.Event()
    stats = SendStats(connections=1)
    family = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0][0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        for group in _paced(packets, speed, stop):
            for p in group:
                try:
                    sock.sendto(p.data, (host, port))
                except OSError as exc:  # ICMP "port unreachable" from an earlier datagram: keep sending
                    if exc.errno is None:
                        raise
                    continue
                _count(stats, [p])
    stats.stopped = stop.is_set()
    return stats


def post_http(packets: Sequence[Packet], url: str, speed: float = 1.0, stop: threading.Event | None = None,
              *, connect_timeout_s: float = 10.0) -> SendStats:
    """POST each packet's JSON to ``url`` over one keep-alive connection (Sensor Logger's HTTP push)."""
    stop = stop or threading.Event()
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise WireError(f"bad URL {url!r}: expected http://HOST:PORT/PATH")
    path = parts.path or "/"
    stats = SendStats()
    conn: http.client.HTTPConnection | None = None
    deadline = time.monotonic() + connect_timeout_s
    try:
        for group in _paced(packets, speed, stop):
            for p in group:
                while True:
                    conn = conn or http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10.0)
                    try:
                        conn.request("POST", path, body=p.data, headers={"Content-Type": "application/json"})
                        resp = conn.getresponse()
                        resp.read()
                        break
                    except OSError as exc:  # not listening yet, or the server closed a kept-alive connection
                        conn.close()
                        conn = None
                        if time.monotonic() >= deadline or stop.wait(_RETRY_S):
                            raise WireError(f"cannot POST to {url}: {exc.strerror or exc}") from exc
                stats.connections = stats.connections or 1
                stats.http_status[resp.status] = stats.http_status.get(resp.status, 0) + 1
                _count(stats, [p])
                deadline = time.monotonic() + connect_timeout_s
    finally:
        if conn is not None:
            conn.close()
    stats.stopped = stop.is_set()
    return stats


def publish_mqtt(packets: Sequence[Packet], url: str, speed: float = 1.0, stop: threading.Event | None = None,
                 *, qos: int = 1, timeout_s: float = 30.0) -> SendStats:
    """Publish each packet to the topic of ``mqtt://[USER@]BROKER:PORT/TOPIC`` (Sensor Logger's MQTT mode)."""
    from hartool.wire import mqtt as wmqtt

    stop = stop or threading.Event()
    target = wmqtt.parse_mqtt_url(url)
    client = wmqtt.make_client(target, client_id=f"hartool-sim-{time.time_ns() % 10**9}",
                               password=wmqtt.read_password())
    client.max_queued_messages_set(0)  # unbounded: a simulator at speed 0 must not lose what it queues
    wmqtt.connect(client, target)
    stats = SendStats(connections=1)
    infos = []
    try:
        for group in _paced(packets, speed, stop):
            for p in group:
                infos.append(client.publish(target.prefix, p.data, qos=qos))
                _count(stats, [p])
        deadline = time.monotonic() + timeout_s
        for info in infos:  # QoS 1: done when the broker acknowledged every message
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:  # paho refused to queue it
                raise WireError(f"cannot publish to {target.display()}: {exc}") from exc
            if not info.is_published():
                raise WireError(f"broker {target.display()} did not acknowledge all messages in {timeout_s:g} s")
    finally:
        wmqtt.disconnect(client)
    stats.stopped = stop.is_set()
    return stats


class SenderThread(threading.Thread):
    """Runs ``send(stop)`` in a daemon thread; ``stats``/``error`` afterwards, ``stop()`` ends it early."""

    def __init__(self, send: Callable[[threading.Event], SendStats], name: str = "hartool-sim-sender") -> None:
        super().__init__(name=name, daemon=True)
        self._send = send
        self._stop_event = threading.Event()
        self.stats: SendStats | None = None
        self.error: WireError | None = None

    def run(self) -> None:
        try:
            self.stats = self._send(self._stop_event)
        except WireError as exc:
            self.error = exc

    def stop(self, timeout: float = 5.0) -> bool:
        self._stop_event.set()
        self.join(timeout)
        return not self.is_alive()

    def result(self, timeout: float) -> SendStats:
        """Wait up to ``timeout`` s for the end; raise the sender's error, or TimeoutError if still running."""
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError(f"{self.name} still sending after {timeout:g} s")
        if self.error is not None:
            raise self.error
        assert self.stats is not None
        return self.stats
