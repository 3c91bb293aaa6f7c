"""The reader thread on real transports: queue overflow accounting, reconnect over TCP, hints, shutdown."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from hartool.sim.device import VirtualDevice
from hartool.wire.autodetect import AutoDecoder, make_decoder
from hartool.wire.events import ReaderEvent
from hartool.wire.reader import ReaderThread
from hartool.wire.serialport import SerialPort
from hartool.wire.sources import open_port
from hartool.wire.text import encode_text_line
from hartool_testing import wait_until

DEADLOCK_GUARD_S = 20.0


def imu_values(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-2.0, 2.0, size=(n, 6)).astype(np.float32)


def text_bytes(vals: np.ndarray, first_index: int = 0) -> bytes:
    """A banner line (a live decoder ignores its first line) and one timestamped line per sample."""
    lines = [encode_text_line(v, t_ms=(first_index + i) * 20) for i, v in enumerate(vals.tolist())]
    return b"hartool test server\r\n" + b"".join(lines)


def drain(reader: ReaderThread, stop_at_final: bool = True) -> tuple[list, list[ReaderEvent]]:
    """Everything queued so far (batches, events), without waiting for more than a short quiet period."""
    batches, events = [], []
    deadline = time.monotonic() + DEADLOCK_GUARD_S
    while time.monotonic() < deadline:
        item = reader.get(timeout=0.2)
        if item is None:
            if reader.finished or not stop_at_final:
                break
            continue
        if isinstance(item, ReaderEvent):
            events.append(item)
            if item.final and stop_at_final:
                break
        else:
            batches.append(item)
    return batches, events


def test_full_queue_drops_are_counted_and_reported_as_gaps() -> None:
    vals = imu_values(5000, seed=1)
    with VirtualDevice(vals, speed=0, protocol="text") as dev:
        reader = ReaderThread(open_port(dev.port_path), protocol="text", max_queue=2, read_size=4096)
        reader.start()
        dev.start()
        # Nobody consumes: the read loop must keep going (not block) and count what it cannot queue.
        wait_until(lambda: reader.stats().samples == len(vals), "all samples decoded")
        batches, _ = drain(reader, stop_at_final=False)
        reader.stop()
    stats = reader.stats()
    delivered = sum(len(b.values) for b in batches)
    assert stats.dropped_queue > 0
    assert delivered + stats.dropped_queue == len(vals)
    # Each delivered batch says how many samples were lost just before it: rebuild the positions.
    pos = 0
    for b in batches:
        pos += b.dropped
        # Samples lost in the queue break the stream before this batch: windows must restart there.
        assert (0 in b.breaks) == (b.dropped > 0)
        np.testing.assert_allclose(b.values, vals[pos : pos + len(b.values)], atol=1e-4, rtol=0)
        np.testing.assert_array_equal(b.t_ms, np.arange(pos, pos + len(b.values)) * 20.0)
        pos += len(b.values)
    assert pos <= len(vals)


class _Server:
    """A TCP 'device' on loopback: each accepted connection gets the next payload, then is closed.

    Like the firmware waiting for 's', it sends only once the host wrote a byte (the reader's start
    command): pyserial discards whatever arrived before its open() finished, so bytes sent right at
    accept could be lost.
    """

    def __init__(self, payloads: list[bytes], keep_last_open: bool = True) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.payloads = payloads
        self.keep_last_open = keep_last_open
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for i, payload in enumerate(self.payloads):
            conn = None
            while conn is None and not self.stop.is_set():
                try:
                    conn, _ = self.sock.accept()
                except TimeoutError:
                    continue
            if conn is None:
                return
            self.accepted += 1
            conn.settimeout(DEADLOCK_GUARD_S)
            try:
                conn.recv(1)
            except TimeoutError:
                conn.close()
                return
            conn.sendall(payload)
            if i == len(self.payloads) - 1 and self.keep_last_open:
                self.stop.wait(DEADLOCK_GUARD_S)
            conn.close()
        self.sock.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(DEADLOCK_GUARD_S)


def test_reconnect_over_tcp_keeps_counting() -> None:
    vals = imu_values(600, seed=2)
    server = _Server([text_bytes(vals[:250]), text_bytes(vals[250:], first_index=250)])
    try:
        port = open_port(f"socket://127.0.0.1:{server.port}")
        assert isinstance(port, SerialPort)
        reader = ReaderThread(
            port, protocol="auto", expected_channels=6, reconnect=True, backoff_initial=0.01
        )
        reader.start()  # writes the start byte 's' on connect and again on every reconnect
        got, events = [], []
        deadline = time.monotonic() + DEADLOCK_GUARD_S
        while sum(len(b) for b in got) < len(vals) and time.monotonic() < deadline:
            item = reader.get(timeout=0.2)
            if isinstance(item, ReaderEvent):
                events.append(item)
            elif item is not None:
                got.append(item.values)
        assert reader.stop()
    finally:
        server.close()
    np.testing.assert_allclose(np.concatenate(got), vals, atol=1e-4, rtol=0)
    kinds = [e.kind for e in events]
    assert kinds == ["protocol", "disconnected", "reconnected", "protocol"]
    assert (
        not events[1].final and events[1].message == f"device socket://127.0.0.1:{server.port} disconnected"
    )
    stats = reader.stats()
    assert (stats.reconnects, stats.disconnects, stats.samples) == (1, 1, len(vals))
    assert stats.lines == len(vals) + 2  # the two banners are seen and skipped
    assert server.accepted == 2


def test_reconnect_gives_up_after_bounded_attempts() -> None:
    server = _Server([text_bytes(imu_values(20))], keep_last_open=False)
    port = open_port(f"socket://127.0.0.1:{server.port}")
    port.write(b"s")
    server.close()  # after the one payload the listener is gone: every reopen is refused
    reader = ReaderThread(
        port,
        protocol="text",
        reconnect=True,
        max_reconnect_attempts=3,
        backoff_initial=0.01,
        backoff_max=0.02,
    )
    reader.start()
    _, events = drain(reader)
    assert reader.stop()
    assert [e.kind for e in events] == ["disconnected", "gave_up"]
    assert events[-1].final and "after 3 attempts" in events[-1].message
    assert "Connection refused" in (reader.last_reconnect_error or "")
    assert reader.end_reason == "gave_up"


def test_garbage_at_the_wrong_baud_gives_a_hint() -> None:
    rng = np.random.default_rng(3)
    noise = bytes(rng.integers(0, 256, size=6000, dtype=np.uint8))
    # loop:// echoes what is written: the reader decodes the noise as if it came from a device.
    reader = ReaderThread(open_port("loop://"), protocol="text", hint_bytes=4096)
    reader.start()
    assert reader.send(noise)
    wait_until(lambda: reader.hint is not None, "the hint")
    _, events = drain(reader, stop_at_final=False)
    assert reader.stop()
    assert [e.kind for e in events] == ["hint"]
    assert events[0].message == (
        "receiving bytes but no valid lines: check --baud (device may use 9600/115200/230400) or --protocol"
    )
    assert reader.stats().samples == 0 and reader.stats().bad_lines > 0


def test_loop_url_round_trip_and_stop() -> None:
    vals = imu_values(100, seed=4)
    reader = ReaderThread(open_port("loop://"), protocol="auto", expected_channels=6)
    with reader:
        reader.send(text_bytes(vals))
        got = []
        deadline = time.monotonic() + DEADLOCK_GUARD_S
        while sum(len(v) for v in got) < len(vals) and time.monotonic() < deadline:
            item = reader.get(timeout=0.2)
            if item is not None and not isinstance(item, ReaderEvent):
                got.append(item.values)
    assert not reader.is_alive() and reader.end_reason == "stopped"
    np.testing.assert_allclose(np.concatenate(got), vals, atol=1e-4, rtol=0)


def test_stop_before_start_closes_the_port() -> None:
    port = open_port("loop://")
    reader = ReaderThread(port)
    assert reader.stop()
    assert reader.port is None and reader.finished


def test_auto_decoder_waits_for_enough_bytes_then_picks() -> None:
    dec = AutoDecoder(expected_channels=6)
    line = encode_text_line([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], t_ms=0)
    assert dec.feed(line[:10]) is None and dec.protocol is None
    out = dec.feed(line[10:] + line * 5)
    assert dec.protocol == "text" and out is not None and len(out.values) == 5  # first line skipped
    with pytest.raises(ValueError, match="protocol must be one of"):
        make_decoder("xml")
