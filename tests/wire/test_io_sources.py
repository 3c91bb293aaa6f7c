"""Opening ports: clear errors, file replay (raw captures and CSV recordings) and stdin."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from hartool.core.csvformat import format_header, format_row, read_csv_session
from hartool.core.errors import WireError
from hartool.sim.device import DEFAULT_SCALES
from hartool.wire.events import ReaderEvent
from hartool.wire.fileports import FilePort, RecordingReplayPort, StdinPort
from hartool.wire.frames import encode_frame, frame_from_values, quantize
from hartool.wire.reader import ReaderThread
from hartool.wire.serialport import SerialPort, SerialPortInfo, candidate_ports, list_serial_ports, open_error
from hartool.wire.sources import open_port
from hartool.wire.text import encode_text_line

DEADLOCK_GUARD_S = 20.0
SCALES = np.asarray(DEFAULT_SCALES, dtype=np.float32)


def imu_values(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-2.0, 2.0, size=(n, 6)).astype(np.float32)


def read_all(reader: ReaderThread) -> tuple[np.ndarray, np.ndarray | None, list[ReaderEvent]]:
    """Run a reader to its final event; all values, t_ms (None if any batch lacks them) and events."""
    values, times, events = [], [], []
    deadline = time.monotonic() + DEADLOCK_GUARD_S
    with reader:
        while time.monotonic() < deadline:
            item = reader.get(timeout=0.2)
            if isinstance(item, ReaderEvent):
                events.append(item)
                if item.final:
                    break
            elif item is not None:
                values.append(item.values)
                times.append(item.t_ms)
    assert time.monotonic() < deadline, "deadlock guard hit"
    t = None if any(t is None for t in times) else np.concatenate(times)
    return np.concatenate(values), t, events


def test_missing_device_says_what_to_try() -> None:
    with pytest.raises(WireError) as info:
        open_port("/dev/ttyACM97")
    msg = str(info.value)
    assert msg.startswith(
        "cannot open /dev/ttyACM97: [Errno 2] No such file or directory (is the board plugged in? "
    )
    others = candidate_ports()
    if others:  # the hint names a USB serial port the OS lists, with its description / VID:PID
        assert f"try --port {others[0].label()}" in msg
    else:
        assert msg.endswith("(is the board plugged in? no USB serial device is connected)")
    assert "\n" not in msg


def test_serial_port_listing_uses_pyserial_list_ports() -> None:
    from serial.tools import list_ports
    from serial.tools.list_ports_common import ListPortInfo

    listed = list_serial_ports()
    assert [p.device for p in listed] == sorted(p.device for p in list_ports.comports())
    assert all(p.usb or "rfcomm" in p.device for p in candidate_ports())
    info = ListPortInfo("/dev/ttyACM3", skip_link_detection=True)
    info.vid, info.pid, info.description = 0x2341, 0x0043, "Arduino Uno"
    port = SerialPortInfo(info.device, info.description, info.vid, info.pid)
    assert port.label() == "/dev/ttyACM3 (Arduino Uno, 2341:0043)"
    assert SerialPortInfo("/dev/ttyS0", "n/a").label() == "/dev/ttyS0"


def test_permission_and_busy_hints() -> None:
    # Root can open anything, so the mapping is checked on the exception pyserial raises for EACCES.
    denied = serial.SerialException(
        errno.EACCES, "could not open port /dev/ttyACM0: [Errno 13] Permission denied"
    )
    msg = str(open_error("/dev/ttyACM0", denied))
    assert msg.startswith("cannot open /dev/ttyACM0: [Errno 13] Permission denied (")
    assert "dialout" in msg
    busy = serial.SerialException(errno.EBUSY, "could not open port /dev/ttyUSB0: [Errno 16] busy")
    assert "another program" in str(open_error("/dev/ttyUSB0", busy))


def test_socket_refused_and_bad_url() -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        free = srv.getsockname()[1]  # closed again on exit: nothing listens there afterwards
    with pytest.raises(WireError, match=r"^cannot open socket://127\.0\.0\.1:\d+: .*Connection refused"):
        open_port(f"socket://127.0.0.1:{free}")
    with pytest.raises(
        WireError, match=r"^cannot open nosuch://x: invalid URL, protocol 'nosuch' not known$"
    ):
        open_port("nosuch://x")
    with pytest.raises(WireError, match="no such file"):
        open_port("file:/nonexistent/capture.txt")


def test_pyserial_urls_open_as_serial_ports() -> None:
    port = open_port("loop://", baud=9600, dtr=False, rts=True)
    try:
        assert isinstance(port, SerialPort) and not port.is_file and not port.eof
        assert port.serial.baudrate == 9600 and port.serial.dtr is False and port.serial.rts is True
        assert port.read(10) == b""  # nothing there: returns after the timeout, does not raise
        port.write(b"abc")
        assert port.read(10) == b"abc"
    finally:
        port.close()


def test_replay_raw_text_capture(tmp_path: Path) -> None:
    vals = imu_values(500, seed=1)
    cap = tmp_path / "capture.txt"
    cap.write_bytes(b"".join(encode_text_line(v, t_ms=i * 20) for i, v in enumerate(vals.tolist())))
    port = open_port(str(cap))
    assert isinstance(port, FilePort) and port.is_file
    # Tiny queue: a file source waits for the consumer instead of dropping.
    got, t_ms, events = read_all(ReaderThread(port, protocol="auto", expected_channels=6, max_queue=1))
    np.testing.assert_allclose(got, vals, atol=1e-4, rtol=0)  # a file starts at a line: none skipped
    np.testing.assert_array_equal(t_ms, np.arange(500) * 20.0)
    assert [e.kind for e in events] == ["protocol", "eof"]
    assert port.eof


def test_replay_raw_binary_capture(tmp_path: Path) -> None:
    vals = imu_values(300, seed=2)
    cap = tmp_path / "capture.bin"
    frames = [frame_from_values(vals[i : i + 1], seq=i, t_ms=i * 10, scales=SCALES) for i in range(300)]
    cap.write_bytes(b"".join(encode_frame(f) for f in frames))
    reader = ReaderThread(open_port(f"file:{cap}"), protocol="binary", max_queue=1)
    got, t_ms, events = read_all(reader)
    np.testing.assert_array_equal(got, quantize(vals, SCALES).astype(np.float32) * SCALES)
    np.testing.assert_array_equal(t_ms, np.arange(300) * 10.0)
    assert events[-1].kind == "eof" and reader.stats().dropped_queue == 0


def test_replay_csv_recording_as_text_lines(tmp_path: Path) -> None:
    vals = imu_values(400, seed=3)
    rec = tmp_path / "s1.csv"
    rec.write_text(
        format_header({"subject": 1, "sample_rate_hz": 50})
        + "".join(format_row(i * 0.02, v, "WALKING") for i, v in enumerate(vals.tolist()))
    )
    port = open_port(f"file:{rec}")
    assert isinstance(port, RecordingReplayPort)
    got, t_ms, _ = read_all(ReaderThread(port, protocol="auto", expected_channels=6))
    np.testing.assert_array_equal(got, read_csv_session(rec).values)  # exactly what the dataset loader reads
    np.testing.assert_allclose(got, vals, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(t_ms, np.arange(400) * 20.0)
    assert port.sample_rate_hz == 50


def test_replay_csv_recording_converts_units(tmp_path: Path) -> None:
    rec = tmp_path / "deg.csv"
    rec.write_text(
        format_header({"units": "acc=m/s2 gyro=deg/s"})
        + "".join(format_row(i * 0.01, [9.80665, 0, 0, 180.0, 0, 0], "") for i in range(20))
    )
    got, _, _ = read_all(ReaderThread(open_port(str(rec)), protocol="text"))
    np.testing.assert_allclose(got[:, [0, 3]], np.tile([1.0, np.pi], (20, 1)), rtol=1e-6)


def test_replay_of_a_broken_recording_names_the_line(tmp_path: Path) -> None:
    rec = tmp_path / "bad.csv"
    rec.write_text(format_header({}) + "0.0,1,2,3,4,5,x,\n")
    with pytest.raises(WireError, match=r"^cannot replay .*bad\.csv:2: not a number"):
        open_port(f"file:{rec}")


def test_stdin_in_a_child_process() -> None:
    vals = imu_values(200, seed=4)
    child = textwrap.dedent(
        """
        import time
        from hartool.wire.events import ReaderEvent
        from hartool.wire.reader import ReaderThread
        from hartool.wire.sources import open_port
        port = open_port("-")
        n, end, deadline = 0, None, time.monotonic() + 20
        with ReaderThread(port, protocol="auto", expected_channels=6) as reader:
            while end is None and time.monotonic() < deadline:
                item = reader.get(timeout=0.2)
                if isinstance(item, ReaderEvent):
                    end = item.kind if item.final else None
                elif item is not None:
                    n += len(item.values)
        print(type(port).__name__, port.is_file, n, end)
        """
    )
    data = b"".join(encode_text_line(v, t_ms=i * 20) for i, v in enumerate(vals.tolist()))
    proc = subprocess.run(
        [sys.executable, "-c", child],
        input=data,
        capture_output=True,
        timeout=DEADLOCK_GUARD_S * 2,
        check=True,
    )
    # A pipe may start mid-line (`cat /dev/ttyACM0 | ...`), so its first line is not trusted.
    assert proc.stdout.decode().split() == ["StdinPort", "False", "199", "eof"]


def test_stdin_port_on_a_pipe_descriptor() -> None:
    r, w = os.pipe()
    try:
        port = StdinPort(timeout=0.01, fd=r)
        assert port.read(10) == b"" and not port.eof
        os.write(w, b"1,2,3\n")
        assert port.read(10) == b"1,2,3\n"
        os.close(w)
        w = -1
        assert port.read(10) == b"" and port.eof
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
