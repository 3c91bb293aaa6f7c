"""The virtual device through a real pty, pyserial and the reader thread: exact values, injected faults, commands."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hartool.core.errors import WireError
from hartool.sim.device import DEFAULT_SCALES, FaultSpec, VirtualDevice
from hartool.wire.binary import BinaryDecoder
from hartool.wire.events import ReaderEvent
from hartool.wire.frames import encode_frame, frame_from_values, quantize
from hartool.wire.reader import ReaderThread
from hartool.wire.sources import open_port

DEADLOCK_GUARD_S = 20.0  # only ever reached if something hangs; no test depends on speed
SCALES = np.asarray(DEFAULT_SCALES, dtype=np.float32)


def imu_values(n: int, seed: int = 0, nch: int = 6) -> np.ndarray:
    """Plausible IMU samples: acc within ±2 g, gyro within ±3 rad/s (inside the binary int16 range)."""
    rng = np.random.default_rng(seed)
    vals = rng.uniform(-2.0, 2.0, size=(n, nch))
    vals[:, 3:] *= 1.5
    return vals.astype(np.float32)


def quantized(vals: np.ndarray) -> np.ndarray:
    """What the binary wire carries for ``vals``: the counts times the scales, as float32."""
    return quantize(vals, SCALES).astype(np.float32) * SCALES


def collect(
    reader: ReaderThread, n: int | None = None
) -> tuple[np.ndarray, np.ndarray | None, list[ReaderEvent]]:
    """Take batches until ``n`` samples arrived (or, with n=None, until a final event); values, t_ms, events.

    t_ms is NaN for batches without time stamps, None when no batch had any.
    """
    values, times, events = [], [], []
    got = 0
    deadline = time.monotonic() + DEADLOCK_GUARD_S
    while (n is None or got < n) and time.monotonic() < deadline:
        item = reader.get(timeout=0.2)
        if item is None:
            if reader.finished:
                break
            continue
        if isinstance(item, ReaderEvent):
            events.append(item)
            if item.final:
                break
            continue
        values.append(item.values)
        times.append(np.full(len(item.values), np.nan) if item.t_ms is None else item.t_ms)
        got += len(item.values)
    assert time.monotonic() < deadline, "deadlock guard hit"
    vals = np.concatenate(values) if values else np.zeros((0, 6), np.float32)
    t = np.concatenate(times) if times else np.zeros(0)
    return vals, (None if np.isnan(t).all() else t), events


def stream(device: VirtualDevice, **reader_kw: object) -> ReaderThread:
    """Open the device's pty with pyserial, start a reader on it, then start the device."""
    reader = ReaderThread(open_port(device.port_path), **reader_kw)  # type: ignore[arg-type]
    reader.start()
    device.start()
    return reader


@pytest.mark.parametrize("timestamps", [True, False])
def test_text_stream_delivers_every_sample_in_order(timestamps: bool) -> None:
    vals = imu_values(3000)
    with VirtualDevice(vals, rate_hz=50, speed=0, protocol="text", timestamps=timestamps) as dev:
        reader = stream(dev, protocol="auto", expected_channels=6)
        got, t_ms, events = collect(reader, len(vals))
        assert reader.stop()
    assert got.shape == vals.shape
    np.testing.assert_allclose(got, vals, atol=1e-4, rtol=0)  # 4 decimals on the wire
    if timestamps:
        np.testing.assert_array_equal(t_ms, np.round(np.arange(len(vals)) * 20.0))
    else:
        assert t_ms is None
    assert [e.kind for e in events] == ["protocol"]
    stats = reader.stats()
    assert stats.protocol == "text"
    assert stats.samples == len(vals)
    assert stats.bad_lines == 0 and stats.dropped_queue == 0 and stats.dropped_wire == 0
    assert dev.samples_sent == len(vals)
    assert reader.end_reason == "stopped"


@pytest.mark.parametrize("spf", [1, 4])
def test_binary_stream_is_exact_counts(spf: int) -> None:
    vals = imu_values(2002, seed=1)
    with VirtualDevice(vals, rate_hz=100, speed=0, protocol="binary", samples_per_frame=spf) as dev:
        reader = stream(dev, protocol="auto")
        got, t_ms, events = collect(reader, len(vals))
        reader.stop()
    np.testing.assert_array_equal(got, quantized(vals))
    assert t_ms is not None
    known = ~np.isnan(t_ms)
    # With several samples per frame the decoder knows the sample period only from the second frame on, so
    # the first batch it returns may come without times; every later one has them.
    first = int(np.argmax(known))
    assert known[first:].all() and (first == 0 or spf > 1) and first < len(vals) // 2
    np.testing.assert_array_equal(t_ms[known], np.flatnonzero(known) * 10.0)
    stats = reader.stats()
    assert stats.protocol == "binary"
    assert stats.frames == -(-len(vals) // spf)  # the last frame holds the remainder
    assert stats.bad_frames == 0 and stats.seq_gaps == 0
    assert events[0].message == "detected binary protocol"


def test_paused_device_waits_for_the_readers_start_byte() -> None:
    vals = imu_values(500, seed=14)
    with VirtualDevice(vals, speed=0, protocol="text", paused=True) as dev:
        dev.start()  # before the host opened the port: nothing may be sent (and lost) yet
        assert not dev.wait(0.1) and dev.samples_sent == 0 and not dev.running
        reader = ReaderThread(open_port(dev.port_path), protocol="auto", expected_channels=6)
        reader.start()  # sends b"s"
        got, _, _ = collect(reader, len(vals))
        reader.stop()
    np.testing.assert_allclose(got, vals, atol=1e-4, rtol=0)
    assert dev.commands_received == 1


def test_batches_carry_their_receive_time() -> None:
    vals = imu_values(200, seed=15)
    with VirtualDevice(vals, speed=0, protocol="binary") as dev:
        before = time.perf_counter_ns()
        reader = stream(dev, protocol="binary")
        stamps = []
        while sum(n for n, _ in stamps) < len(vals):
            item = reader.get(timeout=DEADLOCK_GUARD_S)
            assert item is not None
            if not isinstance(item, ReaderEvent):
                stamps.append((len(item.values), item.received_ns))
        reader.stop()
    times = [t for _, t in stamps]
    assert times == sorted(times) and before < times[0] <= times[-1] <= time.perf_counter_ns()


def test_device_frames_are_byte_identical_to_codec_encode_frame() -> None:
    vals = imu_values(10, seed=2)
    with VirtualDevice(vals, rate_hz=50, speed=0, protocol="binary", samples_per_frame=3) as dev:
        port = open_port(dev.port_path)
        dev.start()
        assert dev.wait(DEADLOCK_GUARD_S)
        raw = b""
        deadline = time.monotonic() + DEADLOCK_GUARD_S
        expected = b"\x00" + b"".join(
            encode_frame(frame_from_values(vals[i : i + 3], seq=i, t_ms=i * 20, scales=SCALES))
            for i in range(0, 10, 3)
        )
        while len(raw) < len(expected) and time.monotonic() < deadline:
            raw += port.read(4096)
        port.close()
    assert raw == expected


def test_paced_stream_with_speedup() -> None:
    vals = imu_values(200, seed=3)
    # 200 Hz x 5 = 1000 samples/s: exercises the sleeping scheduler, not just the as-fast-as-possible path.
    with VirtualDevice(vals, rate_hz=200, speed=5, protocol="text") as dev:
        reader = stream(dev, protocol="text", expected_channels=6)
        got, t_ms, _ = collect(reader, len(vals))
        reader.stop()
    np.testing.assert_allclose(got, vals, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(t_ms, np.arange(len(vals)) * 5.0)


def test_text_faults_are_counted_and_the_rest_is_intact() -> None:
    vals = imu_values(3000, seed=4)
    faults = FaultSpec(garbage_prob=0.03, drop_prob=0.03, truncate_prob=0.03, nan_prob=0.03, clean_start=10)
    with VirtualDevice(vals, speed=0, protocol="text", faults=faults, seed=7, log_sent=True) as dev:
        reader = stream(dev, protocol="text", expected_channels=6)
        assert dev.wait(DEADLOCK_GUARD_S)
        got, t_ms, _ = collect(reader, dev.samples_sent)
        reader.stop()
        sent = np.asarray(dev.sent_indices)
        assert min(dev.garbage_bursts, dev.samples_dropped_injected, dev.truncated, dev.nan_injected) > 20
        assert dev.samples_sent + dev.samples_dropped_injected + dev.truncated + dev.nan_injected == len(vals)
        stats = reader.stats()
        # Garbage, cut lines and NaN lines are each exactly one bad line; dropped lines are simply missing.
        assert stats.bad_lines == dev.garbage_bursts + dev.truncated + dev.nan_injected
        assert stats.samples == dev.samples_sent == len(sent)
    np.testing.assert_allclose(got, vals[sent], atol=1e-4, rtol=0)
    np.testing.assert_array_equal(t_ms, sent * 20.0)


@pytest.mark.parametrize("spf", [1, 5])
def test_binary_faults_drops_are_seq_gaps(spf: int) -> None:
    vals = imu_values(3000, seed=5)
    faults = FaultSpec(garbage_prob=0.03, drop_prob=0.03, truncate_prob=0.03, clean_start=10)
    with VirtualDevice(
        vals, speed=0, protocol="binary", faults=faults, seed=8, samples_per_frame=spf, log_sent=True
    ) as dev:
        reader = stream(dev, protocol="binary")
        assert dev.wait(DEADLOCK_GUARD_S)
        got, t_ms, _ = collect(reader, dev.samples_sent)
        reader.stop()
        sent = np.asarray(dev.sent_indices)
        assert min(dev.garbage_bursts, dev.samples_dropped_injected, dev.truncated) > 0
        stats = reader.stats()
        assert stats.bad_frames == dev.garbage_bursts + dev.truncated // spf
        # Every sample missing before the last one received is seen as a sequence gap, exactly.
        assert stats.dropped_wire == sent[-1] + 1 - len(sent)
        assert stats.samples == dev.samples_sent
    np.testing.assert_array_equal(got, quantized(vals)[sent])
    assert t_ms is not None
    known = ~np.isnan(t_ms)  # see test_binary_stream_is_exact_counts: a first batch may lack times
    np.testing.assert_array_equal(t_ms[known], sent[known] * 20.0)


def test_noise_and_faults_are_reproducible_from_the_seed() -> None:
    vals = imu_values(400, seed=6)
    faults = FaultSpec(drop_prob=0.1, noise_std=0.05, clean_start=5)
    runs = []
    for _ in range(2):
        with VirtualDevice(vals, speed=0, protocol="text", faults=faults, seed=11, log_sent=True) as dev:
            reader = stream(dev, protocol="text")
            assert dev.wait(DEADLOCK_GUARD_S)
            got, _, _ = collect(reader, dev.samples_sent)
            reader.stop()
            runs.append((got, list(dev.sent_indices or [])))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    noise = runs[0][0] - vals[runs[0][1]]
    assert 0.02 < float(noise.std()) < 0.08


def test_loop_mode_keeps_counting() -> None:
    vals = imu_values(100, seed=9)
    with VirtualDevice(vals, speed=0, protocol="binary", loop=True) as dev:
        reader = stream(dev, protocol="binary")
        got, t_ms, _ = collect(reader, 350)
        reader.stop()
    idx = np.arange(len(got))
    np.testing.assert_array_equal(got, quantized(vals)[idx % 100])
    np.testing.assert_array_equal(t_ms, idx * 20.0)


def test_wrong_channel_count_raises_the_codec_error() -> None:
    vals = imu_values(50, nch=3)
    with VirtualDevice(vals, speed=0, protocol="text", timestamps=False, scales=DEFAULT_SCALES[:3]) as dev:
        reader = stream(dev, protocol="auto", expected_channels=6)
        with pytest.raises(WireError, match=r"^device sends 3 values per line, model expects 6$"):
            collect(reader, None)
        assert reader.stop()
    assert reader.end_reason == "error"
    assert isinstance(reader.error, WireError)
    with pytest.raises(WireError):
        reader.raise_if_failed()


def test_wrong_channel_count_binary() -> None:
    vals = imu_values(50, nch=3)
    with VirtualDevice(vals, speed=0, protocol="binary", scales=DEFAULT_SCALES[:3]) as dev:
        reader = stream(dev, protocol="binary", expected_channels=6)
        with pytest.raises(WireError, match="device sends 3 channels per sample, model expects 6"):
            collect(reader, None)


def test_unplug_is_reported_as_device_gone() -> None:
    vals = imu_values(1000, seed=10)
    with VirtualDevice(vals, speed=0, protocol="text", faults=FaultSpec(disconnect_after=300)) as dev:
        reader = stream(dev, protocol="text", expected_channels=6)
        got, _, events = collect(reader, None)
        assert dev.wait(DEADLOCK_GUARD_S) and dev.disconnected
        reader.stop()
    # The device waits for the host to read what was buffered, so the loss is exactly what was never sent.
    np.testing.assert_allclose(got, vals[:300], atol=1e-4, rtol=0)
    assert events[-1].kind == "disconnected" and events[-1].final
    assert events[-1].message == f"device {dev.port_path} disconnected"
    assert reader.end_reason == "disconnected"
    assert reader.stats().disconnects == 1
    assert reader.finished


def test_host_commands_pause_resume_and_switch_protocol() -> None:
    vals = imu_values(400, seed=12)
    with VirtualDevice(vals, rate_hz=100, speed=1, protocol="text", loop=True) as dev:
        port = open_port(dev.port_path)
        dev.start()
        port.write(b"p")
        deadline = time.monotonic() + DEADLOCK_GUARD_S
        while dev.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not dev.running
        port.write(b"bs")  # binary, then start
        while (dev.protocol != "binary" or not dev.running) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dev.protocol == "binary" and dev.commands_received == 3
        decoder = BinaryDecoder()
        frames_seen = 0
        while frames_seen < 5 and time.monotonic() < deadline:
            data = port.read(4096)
            decoder.feed(data)  # text from before the switch ends at the 0x00 the device sends on 'b'
            frames_seen = decoder.frames
        port.close()
    assert frames_seen >= 5


def test_stop_and_close_do_not_hang_when_nobody_reads() -> None:
    vals = imu_values(20000, seed=13)
    dev = VirtualDevice(vals, speed=0, protocol="text")
    dev.start()  # no host: the pty buffer fills and the device's writes wait
    assert not dev.wait(0.2)
    assert dev.stop(timeout=DEADLOCK_GUARD_S)
    dev.close()
    assert dev.samples_sent < len(vals)
