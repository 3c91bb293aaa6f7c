"""The recorder: device -> pty -> CSV, read back by the ``csv:DIR`` dataset loader with the same values and label."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from hartool.core.csvformat import read_csv_session
from hartool.core.errors import WireError
from hartool.data import HAPT_LABEL_NAMES, load_dataset
from hartool.sim.device import DEFAULT_SCALES, FaultSpec, VirtualDevice
from hartool.wire.frames import quantize
from hartool.wire.port import Port
from hartool.wire.recorder import RecordOptions, record
from hartool.wire.sources import open_port
from hartool.wire.spec import SourceSpec

SCALES = np.asarray(DEFAULT_SCALES, dtype=np.float32)
WALKING = next(i for i, n in HAPT_LABEL_NAMES.items() if n == "WALKING")


def _options(port: Port, *, label: str = "", meta: dict | None = None, duration_s: float | None = None,
             **source: object) -> RecordOptions:
    """Record options for ``port`` read with the source options ``source`` (protocol, units, ...)."""
    return RecordOptions(SourceSpec(port.name, **source), label=label, meta=meta or {},  # type: ignore[arg-type]
                         duration_s=duration_s)


def imu_values(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-2.0, 2.0, size=(n, 6)).astype(np.float32)


def test_record_text_stream_round_trips_through_the_dataset_loader(tmp_path: Path) -> None:
    vals = imu_values(700, seed=1)
    out = tmp_path / "rec" / "walk_subject3.csv"
    done = threading.Event()

    def progress(total: int) -> None:
        if total >= len(vals):
            done.set()  # everything arrived: stop (the way q or Ctrl-C in the CLI set the event)

    with VirtualDevice(vals, rate_hz=50, speed=0) as dev:
        port = open_port(dev.port_path)
        dev.start()
        stats = record(port, out, _options(port, label="walking", meta={"subject": 3, "sample_rate_hz": 50}),
                       stop_event=done, on_batch=progress)
        port.close()
    assert (stats.path, stats.samples, stats.end_reason, stats.time_source) == (out, 700, "stopped", "device")
    assert stats.duration_s == pytest.approx(699 * 0.02)
    assert not list(out.parent.glob(".*.part"))

    head = out.read_text().splitlines()[:4]
    assert head == [
        "# subject: 3",
        "# sample_rate_hz: 50",
        "# units: acc=g gyro=rad/s",
        "t_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label",
    ]
    ds = load_dataset(f"csv:{out.parent}")
    (rec,) = ds.recordings
    assert rec.subject == 3 and ds.sample_rate_hz == 50
    np.testing.assert_allclose(rec.values, vals, atol=1e-4, rtol=0)
    assert (rec.labels == WALKING).all() and ds.label_names[WALKING] == "WALKING"
    np.testing.assert_allclose(read_csv_session(out).t_s, np.arange(700) * 0.02, atol=1e-9)


def test_unplug_ends_the_recording_and_keeps_the_rows(tmp_path: Path) -> None:
    vals = imu_values(300, seed=4)
    out = tmp_path / "unplug.csv"
    # The device unplugs itself after its last sample. How much of its buffer the host read before the
    # close depends on the simulator's drain wait (machine load), so only a prefix is asserted.
    with VirtualDevice(vals, rate_hz=50, speed=0, faults=FaultSpec(disconnect_after=len(vals))) as dev:
        port = open_port(dev.port_path)
        dev.start()
        stats = record(port, out, _options(port, label="walking", meta={"sample_rate_hz": 50}, protocol="text"))
        port.close()
    assert stats.end_reason == "disconnected" and 0 < stats.samples <= len(vals)
    session = read_csv_session(out)
    np.testing.assert_allclose(session.values, vals[: stats.samples], atol=1e-4, rtol=0)


def test_record_binary_without_timestamps_uses_host_time(tmp_path: Path) -> None:
    vals = imu_values(300, seed=2)
    out = tmp_path / "bin" / "s1.csv"
    done = threading.Event()

    def progress(total: int) -> None:
        if total >= len(vals):
            done.set()  # everything arrived: stop (the way Ctrl-C in the CLI sets the event)

    with VirtualDevice(vals, speed=0, protocol="binary", timestamps=False, samples_per_frame=3) as dev:
        port = open_port(dev.port_path)
        dev.start()
        stats = record(port, out, _options(port, label="sitting", meta={"sample_rate_hz": 50}, protocol="binary"),
                       stop_event=done, on_batch=progress)
        port.close()
    assert (stats.samples, stats.end_reason, stats.time_source) == (300, "stopped", "host")
    assert stats.decoder["frames"] == 100 and stats.decoder["bad_frames"] == 0
    session = read_csv_session(out)
    np.testing.assert_allclose(session.values, quantize(vals, SCALES).astype(np.float32) * SCALES, atol=1e-6)
    assert (np.diff(session.t_s) >= 0).all() and session.t_s[0] == 0.0
    assert set(session.labels) == {"SITTING"}


def test_interrupt_keeps_what_was_recorded(tmp_path: Path) -> None:
    vals = imu_values(2000, seed=3)
    out = tmp_path / "s2.csv"

    def interrupt(total: int) -> None:
        if total >= 100:
            raise KeyboardInterrupt

    with VirtualDevice(vals, speed=0, loop=True) as dev:
        port = open_port(dev.port_path)
        dev.start()
        with pytest.raises(KeyboardInterrupt):
            record(port, out, _options(port, meta={"sample_rate_hz": 50}, protocol="text"), on_batch=interrupt)
        port.close()
    session = read_csv_session(out)  # renamed into place by the finally block, complete rows only
    n = len(session.values)
    assert n >= 100
    np.testing.assert_allclose(session.values, vals[:n], atol=1e-4, rtol=0)
    assert session.labels == [""] * n
    assert not list(tmp_path.glob(".*.part"))


def test_nothing_received_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "empty.csv"
    with VirtualDevice(imu_values(10)) as dev:  # never started: silent
        port = open_port(dev.port_path)
        with pytest.raises(
            WireError, match=r"^no samples received from /dev/pts/\d+ \(0 bytes read, duration\)"
        ):
            record(port, out, _options(port, label="walking", duration_s=0.2))
        port.close()
    assert not out.exists() and not list(tmp_path.iterdir())


def test_stream_with_other_than_six_channels_is_refused(tmp_path: Path) -> None:
    vals = imu_values(50)[:, :3]
    with VirtualDevice(vals, speed=0, timestamps=False, scales=DEFAULT_SCALES[:3]) as dev:
        port = open_port(dev.port_path)
        dev.start()
        with pytest.raises(WireError, match="device sends 3 values per line, model expects 6"):
            record(port, tmp_path / "x.csv", _options(port, protocol="text"))
        port.close()
    assert not list(tmp_path.iterdir())


def test_bad_label_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    port = open_port("loop://")
    try:
        with pytest.raises(ValueError, match="must not contain a comma"):
            record(port, tmp_path / "x.csv", _options(port, label="a,b", duration_s=1.0, protocol="text"))
    finally:
        port.close()
    assert not list(tmp_path.iterdir())


# --- label switches, time units and value units ------------------------------------------------------------


def _text_lines(vals: np.ndarray, t: np.ndarray) -> bytes:
    return "".join(f"{ts}," + ",".join(f"{v:.5f}" for v in row) + "\n" for ts, row in zip(t, vals, strict=True)).encode()


class _PtyFeeder:
    """The device end of a real pseudo-terminal: the test writes lines, the recorder reads the other end."""

    def __init__(self) -> None:
        import os

        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        import os

        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view):]

    def close(self) -> None:
        import os

        for fd in (self.master, self.slave):
            os.close(fd)


def test_label_switches_apply_to_the_samples_after_them(tmp_path: Path) -> None:
    import queue

    vals = imu_values(400, seed=5)
    t_ms = np.arange(400) * 20
    feeder = _PtyFeeder()
    port = open_port(feeder.path)
    events: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    seen = {"n": 0}
    arrived = threading.Condition()

    def progress(total: int) -> None:
        with arrived:
            seen["n"] = total
            arrived.notify_all()

    def wait_for(n: int) -> None:
        with arrived:
            assert arrived.wait_for(lambda: seen["n"] >= n, timeout=30), seen

    result: dict[str, object] = {}
    options = _options(port, meta={"subject": "alice", "sample_rate_hz": 50}, protocol="text")
    worker = threading.Thread(target=lambda: result.update(stats=record(
        port, tmp_path / "s.csv", options, stop_event=stop, events=events, on_batch=progress)))
    worker.start()
    try:
        feeder.write(b"banner line, cut or not\n")
        for k, switch in enumerate(["WALKING", "SITTING", "", None]):
            feeder.write(_text_lines(vals[k * 100:(k + 1) * 100], t_ms[k * 100:(k + 1) * 100]))
            wait_for((k + 1) * 100)
            if switch is not None:
                events.put(switch)
        stop.set()
        worker.join(timeout=30)
    finally:
        stop.set()
        port.close()
        feeder.close()
    stats = result["stats"]
    session = read_csv_session(tmp_path / "s.csv")
    assert session.labels == [""] * 100 + ["WALKING"] * 100 + ["SITTING"] * 100 + [""] * 100
    np.testing.assert_allclose(session.t_s, np.arange(400) * 0.02, atol=1e-9)
    assert stats.label_samples == {"": 200, "WALKING": 100, "SITTING": 100}
    assert stats.label_seconds == pytest.approx({"": 4.0, "WALKING": 2.0, "SITTING": 2.0})
    assert [lab for _, lab in stats.switches] == ["WALKING", "SITTING", ""]
    assert session.meta["subject"] == "alice" and stats.time_unit == "ms"


@pytest.mark.parametrize(("unit", "step", "origin"), [("us", 20_000, 1_700_000_000_000_000),
                                                       ("ns", 20_000_000, 1_700_000_000_000_000_000),
                                                       ("s", 0.02, 12.5)])
def test_device_time_is_stored_in_seconds_whatever_the_unit(tmp_path: Path, unit: str, step: float,
                                                             origin: float) -> None:
    vals = imu_values(50, seed=6)
    src = tmp_path / "raw.txt"
    stamps = [origin + k * step for k in range(50)]
    src.write_bytes(b"t,ax,ay,az,gx,gy,gz\n" + _text_lines(vals, np.asarray(stamps, dtype=object)))
    port = open_port(str(src))
    try:
        stats = record(port, tmp_path / "out" / "r.csv", _options(port, label="walking", protocol="text"))
    finally:
        port.close()
    assert (stats.time_source, stats.time_unit, stats.samples) == ("device", unit, 50)
    np.testing.assert_allclose(read_csv_session(tmp_path / "out" / "r.csv").t_s, np.arange(50) * 0.02, atol=1e-6)


def test_units_are_converted_to_g_and_rad_s(tmp_path: Path) -> None:
    counts = np.asarray([[16384, -8192, 0, 131, -262, 0]] * 20, dtype=np.float64)
    src = tmp_path / "raw.txt"
    src.write_bytes(b"header\n" + _text_lines(counts, np.arange(20) * 20))
    port = open_port(str(src))
    try:
        record(port, tmp_path / "out" / "raw.csv", _options(port, protocol="text", acc_unit="raw", gyro_unit="raw",
                                                                 acc_lsb=1 / 16384, gyro_lsb=1 / 131))
    finally:
        port.close()
    session = read_csv_session(tmp_path / "out" / "raw.csv")
    assert session.meta["units"] == "acc=g gyro=rad/s"
    np.testing.assert_allclose(session.values[0], [1.0, -0.5, 0.0, np.pi / 180, -2 * np.pi / 180, 0.0], rtol=1e-6)

    src.write_bytes(b"header\n" + _text_lines(np.asarray([[9.80665, 0, 0, 180, 0, 0]] * 20), np.arange(20) * 20))
    port = open_port(str(src))
    try:
        record(port, tmp_path / "out" / "phone.csv", _options(port, protocol="text", acc_unit="m/s2", gyro_unit="deg/s"))
    finally:
        port.close()
    np.testing.assert_allclose(read_csv_session(tmp_path / "out" / "phone.csv").values[0], [1, 0, 0, np.pi, 0, 0],
                               rtol=1e-6)


def test_lsb_without_raw_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    port = open_port("loop://")
    try:
        with pytest.raises(WireError, match=r"--acc-lsb only applies with --acc-unit raw"):
            record(port, tmp_path / "x.csv", _options(port, duration_s=1.0, protocol="text", acc_lsb=0.001))
        with pytest.raises(WireError, match=r"--gyro-unit raw needs --gyro-lsb"):
            record(port, tmp_path / "x.csv", _options(port, duration_s=1.0, protocol="text", gyro_unit="raw"))
    finally:
        port.close()
    assert not list(tmp_path.iterdir())
