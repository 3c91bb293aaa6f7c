"""The recorder: device -> pty -> CSV, read back by the ``csv:DIR`` dataset loader with the same values and label."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from hartool.core.csvformat import read_csv_session
from hartool.core.errors import WireError
from hartool.data import HAPT_LABEL_NAMES, load_dataset
from hartool.wire.codec import BinaryDecoder, quantize
from hartool.wire.device import DEFAULT_SCALES, FaultSpec, VirtualDevice
from hartool.wire.reader import make_decoder
from hartool.wire.recorder import record
from hartool.wire.sources import open_port

SCALES = np.asarray(DEFAULT_SCALES, dtype=np.float32)
WALKING = next(i for i, n in HAPT_LABEL_NAMES.items() if n == "WALKING")


def imu_values(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-2.0, 2.0, size=(n, 6)).astype(np.float32)


def test_record_text_stream_round_trips_through_the_dataset_loader(tmp_path: Path) -> None:
    vals = imu_values(700, seed=1)
    out = tmp_path / "rec" / "walk_subject3.csv"
    # The device unplugs itself after the last sample: that ends the recording, keeping every row.
    with VirtualDevice(vals, rate_hz=50, speed=0, faults=FaultSpec(disconnect_after=len(vals))) as dev:
        port = open_port(dev.port_path)
        dev.start()
        stats = record(
            port,
            make_decoder("auto", expected_channels=6),
            out,
            label="walking",
            duration_s=None,
            meta={"subject": 3, "sample_rate_hz": 50},
            stop_event=threading.Event(),
        )
        port.close()
    assert (stats.path, stats.samples, stats.end_reason, stats.time_source) == (
        out,
        700,
        "disconnected",
        "device",
    )
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
        stats = record(
            port, BinaryDecoder(), out, "sitting", None, {"sample_rate_hz": 50}, done, on_batch=progress
        )
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
            record(
                port, make_decoder("text"), out, "", None, {"sample_rate_hz": 50}, None, on_batch=interrupt
            )
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
            record(port, make_decoder("auto"), out, "walking", 0.2, {}, None)
        port.close()
    assert not out.exists() and not list(tmp_path.iterdir())


def test_stream_with_other_than_six_channels_is_refused(tmp_path: Path) -> None:
    vals = imu_values(50)[:, :3]
    with VirtualDevice(vals, speed=0, timestamps=False, scales=DEFAULT_SCALES[:3]) as dev:
        port = open_port(dev.port_path)
        dev.start()
        with pytest.raises(WireError, match="device sends 3 channels per sample; recordings need 6"):
            record(port, make_decoder("text"), tmp_path / "x.csv", "", None, {}, None)
        port.close()
    assert not list(tmp_path.iterdir())


def test_bad_label_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    port = open_port("loop://")
    try:
        with pytest.raises(ValueError, match="must not contain a comma"):
            record(port, make_decoder("text"), tmp_path / "x.csv", "a,b", 1.0, {}, None)
    finally:
        port.close()
    assert not list(tmp_path.iterdir())
