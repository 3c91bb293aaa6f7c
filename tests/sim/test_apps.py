"""Phone-app and MCU simulators: the documented formats, parsed back and compared to the source motion,
and sent over real sockets, a real HTTP server and a real MQTT broker into the listening ports."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hartool.core.csvformat import format_header, format_row
from hartool.sim.apps import hyperimu_packets, mcu_packets, sensorlogger_packets
from hartool.sim.play import app_packets, parse_host_port, play_app
from hartool.sim.senders import SenderThread, post_http, publish_mqtt, send_tcp, send_udp
from hartool.sim.signals import STANDARD_GRAVITY, device_clock, sample_at, split_gravity
from hartool.wire.httppush import HttpPushPort
from hartool.wire.mqttsub import MqttSubscribePort
from hartool.wire.port import DeviceGone
from hartool.wire.sources import open_port
from hartool.wire.tcp import TcpListenPort
from hartool.wire.udp import UdpPort
from hartool_testing import hartool
from services import MqttBroker

GUARD_S = 30.0
SRC_RATE = 50.0
SECONDS = 8.0
AMP = np.array([0.3, 0.2, 0.25, 1.0, 0.8, 1.2])  # g, g, g, rad/s x3
FREQ = np.array([1.0, 0.7, 1.3, 0.9, 1.1, 0.5])
PHASE = np.array([0.0, 1.0, 2.0, 0.5, 1.5, 2.5])
OFFSET = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0])  # gravity along z


def motion(t: np.ndarray) -> np.ndarray:
    """The true (smooth) motion: acc in g with 1 g on z, gyro in rad/s."""
    return OFFSET + AMP * np.sin(2 * np.pi * FREQ * t[:, None] + PHASE)


def recording() -> np.ndarray:
    return motion(np.arange(int(SECONDS * SRC_RATE) + 1) / SRC_RATE).astype(np.float32)


# Linear interpolation of a 50 Hz sampling of these sinusoids is off by at most A(2 pi f)^2 h^2 / 8 (~0.3 % of
# A), float32 and printing add ~1e-5, and a timestamp rounded to 1 ms moves the value by at most
# A * 2 pi f * 0.5 ms (~0.4 %). 1 % of the amplitude covers that; a wrong unit or a timestamp off by one
# sample (10 ms: ~6 % of A) does not pass.
def assert_matches_motion(t: np.ndarray, acc_g: np.ndarray, gyro: np.ndarray) -> None:
    truth = motion(t)
    acc_err = np.abs(acc_g - truth[:, :3]).max(axis=0)
    gyro_err = np.abs(gyro - truth[:, 3:]).max(axis=0)
    assert np.all(acc_err < 0.01 * AMP[:3] + 1e-4), acc_err
    assert np.all(gyro_err < 0.01 * AMP[3:] + 1e-4), gyro_err


def read_bytes(port, n: int) -> bytes:
    out = bytearray()
    deadline = time.monotonic() + GUARD_S
    while len(out) < n:
        assert time.monotonic() < deadline, f"{len(out)} of {n} bytes"
        try:
            out += port.read(65536)
        except DeviceGone:
            port.close()
            port = port.reopen()
    return bytes(out)


# --------------------------------------------------------------------------------------------------------
# Signals


def test_device_clock_rate_jitter_and_order() -> None:
    rng = np.random.default_rng(1)
    t = device_clock(60.0, 100.0, 2.0, rng)
    dt = np.diff(t)
    assert len(t) == pytest.approx(6001, abs=2) and np.all(dt > 0)
    assert np.median(dt) == pytest.approx(0.01, abs=5e-4)
    assert 0.0015 < np.std(t - np.arange(len(t)) / 100.0) < 0.0025  # the jitter asked for
    skewed = device_clock(10.0, 100.0, 0.0, skew=0.01, offset_s=0.004)
    assert skewed[0] == pytest.approx(0.004) and np.diff(skewed)[0] == pytest.approx(0.01 / 1.01)


def test_split_gravity_sums_to_total_and_finds_gravity() -> None:
    rec = recording()
    total = rec[:, :3].astype(np.float64) * STANDARD_GRAVITY
    linear, gravity = split_gravity(total, SRC_RATE)
    np.testing.assert_allclose(linear + gravity, total, atol=1e-9)
    late = slice(int(3 * SRC_RATE), None)  # after the filter settled (tau 0.5 s)
    assert np.mean(gravity[late, 2]) == pytest.approx(STANDARD_GRAVITY, abs=0.2)
    assert np.max(np.abs(np.mean(linear[late], axis=0))) < 0.3
    assert np.std(gravity[late, 0]) < 0.5 * np.std(total[late, 0])  # mostly the slow part
    assert np.all(gravity[0] == total[0])  # causal, starts at the first sample


def test_sample_at_is_linear_interpolation() -> None:
    vals = np.array([[0.0, 10.0], [2.0, 20.0], [4.0, 0.0]])
    np.testing.assert_allclose(sample_at(vals, 2.0, np.array([0.0, 0.25, 0.75, 1.0])),
                               [[0, 10], [1, 15], [3, 10], [4, 0]])


# --------------------------------------------------------------------------------------------------------
# Formats, parsed back


def parse_hyperimu_csv(data: bytes, epoch0: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.array([[float(x) for x in line.split(",")] for line in data.decode().splitlines()])
    return (rows[:, 0] - epoch0) / 1000.0, rows[:, 1:]


def test_hyperimu_csv_is_epoch_ms_m_s2_rad_s_with_magnetometer_after_gyro() -> None:
    epoch0 = 1_700_000_000_000
    packets = hyperimu_packets(recording(), SRC_RATE, 100.0, 2.0, start_epoch_ms=epoch0, seed=3)
    data = b"".join(p.data for p in packets)
    assert data.endswith(b"\n") and len(packets) == sum(p.samples for p in packets)
    t, cols = parse_hyperimu_csv(data, epoch0)
    assert cols.shape == (len(packets), 9)
    assert len(t) == pytest.approx(SECONDS * 100, abs=3) and np.all(np.diff(t) > 0)
    assert np.median(np.diff(t)) == pytest.approx(0.010, abs=0.001)
    assert [p.t_s for p in packets[:3]] == pytest.approx((t[:3]), abs=0.0006)
    assert_matches_motion(t, cols[:, :3] / STANDARD_GRAVITY, cols[:, 3:6])
    assert np.all(np.abs(cols[:, 6:9]) > 1.0) and np.all(np.abs(cols[:, 6:9]) < 100.0)  # µT, earth-like


def test_hyperimu_json_packets_and_several_lines_per_packet() -> None:
    packets = hyperimu_packets(recording(), SRC_RATE, 200.0, 1.0, fmt="json", lines_per_packet=4,
                               start_epoch_ms=0, seed=4)
    assert all(p.samples == 4 for p in packets[:-1]) and packets[0].data.count(b"\n") == 4
    objs = [json.loads(line) for p in packets for line in p.data.decode().splitlines()]
    assert {o["op"] for o in objs} == {"hyperimu"}
    assert set(objs[0]) == {"op", "Timestamp", "Accelerometer", "Gyroscope", "Magnetometer"}
    t = np.array([o["Timestamp"] for o in objs]) / 1000.0
    assert np.median(np.diff(t)) == pytest.approx(0.005, abs=0.001)
    acc = np.array([o["Accelerometer"] for o in objs]) / STANDARD_GRAVITY
    assert_matches_motion(t, acc, np.array([o["Gyroscope"] for o in objs]))


def test_sensor_logger_batches_separate_clocks_and_gravity_apart() -> None:
    epoch0 = 1_700_000_000_000_000_000
    packets = sensorlogger_packets(recording(), SRC_RATE, 100.0, 2.0, batch_s=0.25, start_epoch_ns=epoch0,
                                   device_id="pixel", seed=5)
    msgs = [json.loads(p.data) for p in packets]
    assert [m["messageId"] for m in msgs] == list(range(len(msgs)))
    assert {m["deviceId"] for m in msgs} == {"pixel"} and len({m["sessionId"] for m in msgs}) == 1
    assert len(msgs) == pytest.approx(SECONDS / 0.25, abs=1)
    per: dict[str, list] = {"accelerometer": [], "gravity": [], "gyroscope": []}
    for m in msgs:
        for r in m["payload"]:
            per[r["name"]].append((r["time"], r["values"]["x"], r["values"]["y"], r["values"]["z"]))
    arrays = {k: np.array(v, dtype=np.float64) for k, v in per.items()}
    times = {k: (a[:, 0] - epoch0) / 1e9 for k, a in arrays.items()}
    for k, t in times.items():
        assert np.all(np.diff(t) > 0), k
        assert np.median(np.diff(t)) == pytest.approx(0.01, rel=0.02), k
    assert len({round(t[0], 6) for t in times.values()}) == 3  # their clocks do not line up
    # Total acceleration = accelerometer + gravity, once both are interpolated onto one grid.
    grid = np.arange(0.1, SECONDS - 0.1, 0.02)
    acc = np.column_stack([np.interp(grid, times["accelerometer"], arrays["accelerometer"][:, c]) for c in (1, 2, 3)])
    grav = np.column_stack([np.interp(grid, times["gravity"], arrays["gravity"][:, c]) for c in (1, 2, 3)])
    gyro = np.column_stack([np.interp(grid, times["gyroscope"], arrays["gyroscope"][:, c]) for c in (1, 2, 3)])
    assert_matches_motion(grid, (acc + grav) / STANDARD_GRAVITY, gyro)
    assert np.mean(grav[grid > 3, 2]) == pytest.approx(STANDARD_GRAVITY, abs=0.2)  # gravity really is apart
    assert abs(np.mean(acc[grid > 3, 2])) < 0.3
    assert all(packets[i].t_s <= packets[i + 1].t_s for i in range(len(packets) - 1))


def test_mcu_lines_have_micros_timestamps_at_104_hz() -> None:
    packets = mcu_packets(recording(), SRC_RATE, 104.0, 0.02, boot_us=5_000_000, seed=6)
    lines = b"".join(p.data for p in packets).decode().split("\r\n")[:-1]
    rows = np.array([[float(x) for x in line.split(",")] for line in lines])
    micros = rows[:, 0].astype(np.int64)
    assert micros[0] >= 5_000_000 and np.all(np.diff(micros) > 0)
    assert np.median(np.diff(micros)) == pytest.approx(1e6 / 104, abs=2)
    assert_matches_motion((micros - 5_000_000) / 1e6, rows[:, 1:4], rows[:, 4:7])


# --------------------------------------------------------------------------------------------------------
# Transports into the listening ports


def test_hyperimu_over_tcp_listen_with_wifi_drops_keeps_every_byte() -> None:
    packets = hyperimu_packets(recording(), SRC_RATE, 100.0, 2.0, start_epoch_ms=0)
    port = TcpListenPort("127.0.0.1", 0)
    sender = SenderThread(lambda stop: send_tcp(packets, *port.address, speed=0, stop=stop, drop_every=250))
    sender.start()
    expected = b"".join(p.data for p in packets)
    try:
        assert read_bytes(port, len(expected)) == expected
        stats = sender.result(GUARD_S)
    finally:
        sender.stop()
        port.close()
    assert (stats.packets, stats.samples) == (len(packets), len(packets))
    assert stats.connections == -(-len(packets) // 250) >= 3


def test_hyperimu_over_udp_one_line_per_datagram() -> None:
    # 99 datagrams of ~90 bytes: far below a default kernel buffer, so none can be lost before the read.
    packets = hyperimu_packets(recording()[:50], SRC_RATE, 100.0, 2.0, start_epoch_ms=0)
    port = UdpPort("127.0.0.1", 0)
    try:
        stats = send_udp(packets, *port.address, speed=0)
        expected = b"".join(p.data for p in packets)
        assert read_bytes(port, len(expected)) == expected
        assert port.counters()["datagrams"] == stats.packets == len(packets)
    finally:
        port.close()


def test_sensor_logger_over_http_every_batch_answered_200() -> None:
    packets = sensorlogger_packets(recording(), SRC_RATE, 100.0, 2.0, start_epoch_ns=0)
    port = HttpPushPort("127.0.0.1", 0, "/push")
    try:
        stats = post_http(packets, f"http://127.0.0.1:{port.address[1]}/push", speed=0)
        assert stats.http_status == {200: len(packets)}
        expected = b"".join(json.dumps(json.loads(p.data), separators=(",", ":")).encode() + b"\n" for p in packets)
        assert read_bytes(port, len(expected)) == expected
        assert port.counters()["batches"] == len(packets)
    finally:
        port.close()


def test_sensor_logger_over_mqtt_through_the_broker(mqtt_broker: MqttBroker) -> None:
    packets = sensorlogger_packets(recording(), SRC_RATE, 100.0, 2.0, start_epoch_ns=0)
    port = open_port(mqtt_broker.url("phone/sensorlogger"))
    assert isinstance(port, MqttSubscribePort)
    try:
        stats = publish_mqtt(packets, mqtt_broker.url("phone/sensorlogger"), speed=0)
        assert stats.packets == len(packets)
        expected = b"".join(p.data + b"\n" for p in packets)
        assert read_bytes(port, len(expected)) == expected
    finally:
        port.close()


def test_paced_sending_stops_when_asked() -> None:
    packets = mcu_packets(recording(), SRC_RATE, 104.0)  # 8 s at real time
    port = UdpPort("127.0.0.1", 0)
    stop = threading.Event()
    try:
        sender = SenderThread(lambda s: send_udp(packets, *port.address, speed=1.0, stop=s))
        sender.start()
        assert read_bytes(port, len(packets[0].data)) == packets[0].data  # it started at real time
        assert sender.stop(GUARD_S)
        assert sender.stats is not None and sender.stats.stopped and sender.stats.packets < len(packets)
    finally:
        stop.set()
        port.close()


def test_play_app_targets() -> None:
    assert parse_host_port("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_host_port("tcp-listen://0.0.0.0:9001") == ("0.0.0.0", 9001)
    with pytest.raises(Exception, match="HOST:PORT"):
        parse_host_port("localhost")
    packets = app_packets("mcu-tcp", recording()[:60], SRC_RATE)
    assert np.median(np.diff([p.t_s for p in packets])) == pytest.approx(1 / 104, abs=1e-4)
    port = TcpListenPort("127.0.0.1", 0)
    try:
        sender = SenderThread(lambda stop: play_app("mcu-tcp", packets, f"127.0.0.1:{port.address[1]}",
                                                    speed=0, stop=stop))
        sender.start()
        expected = b"".join(p.data for p in packets)
        assert read_bytes(port, len(expected)) == expected
        assert sender.result(GUARD_S).samples == len(packets)
    finally:
        port.close()


# --------------------------------------------------------------------------------------------------------
# The CLI


def small_csv(tmp_path: Path) -> Path:
    rec = recording()[:150]
    path = tmp_path / "rec.csv"
    path.write_text(format_header({"sample_rate_hz": SRC_RATE})
                    + "".join(format_row(i / SRC_RATE, row) for i, row in enumerate(rec.tolist())))
    return path


def test_cli_simulate_hyperimu_tcp_into_a_tcp_listen_port(tmp_path: Path) -> None:
    port = TcpListenPort("127.0.0.1", 0)
    try:
        proc = hartool("simulate", "--as", "hyperimu-tcp", "--to", f"127.0.0.1:{port.address[1]}",
                       "--csv", str(small_csv(tmp_path)), "--speed", "0", "--rate", "100", timeout=120)
        assert "sent 299 packets (299 readings" in proc.stderr  # 3 s at 100 Hz
        data = b""
        deadline = time.monotonic() + GUARD_S
        while data.count(b"\n") < 299:  # TCP: the sent bytes wait in the kernel for us
            assert time.monotonic() < deadline
            data += port.read(65536)
        t = np.array([int(line.split(b",")[0]) for line in data.splitlines()])
        cols = np.array([[float(x) for x in line.split(b",")[1:]] for line in data.splitlines()])
        assert len(t) == 299 and cols.shape[1] == 9
        assert np.median(np.diff(t)) == 10
    finally:
        port.close()


def test_cli_simulate_rejects_bad_options(tmp_path: Path) -> None:
    csv = str(small_csv(tmp_path))
    proc = hartool("simulate", "--as", "hyperimu-tcp", "--csv", csv, check=False)
    assert proc.returncode != 0 and "needs --to" in proc.stderr
    proc = hartool("simulate", "--as", "mcu-tcp", "--to", "127.0.0.1:9", "--drop", "0.1", "--csv", csv, check=False)
    assert proc.returncode != 0 and "serial only" in proc.stderr
    proc = hartool("simulate", "--rate", "0", "--csv", csv, check=False)
    assert proc.returncode == 2 and "--rate" in proc.stderr
    proc = hartool("simulate", "--garbage", "1.5", "--csv", csv, check=False)
    assert proc.returncode == 2 and "--garbage" in proc.stderr


def test_cli_simulate_serial_default_is_the_pty_board(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "hartool", "simulate", "--csv", str(small_csv(tmp_path)),
                             "--speed", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pty_path = proc.stdout.readline().strip()  # the data on stdout: the port to open
        assert pty_path.startswith("/dev/pts/")
        port = open_port(pty_path)
        port.write(b"s")  # the board waits for the host's start byte
        data = b""
        deadline = time.monotonic() + GUARD_S
        while data.count(b"\n") < 151 and time.monotonic() < deadline:  # banner + 150 samples
            data += port.read(65536)
        port.close()
        rows = [line.split(b",") for line in data.splitlines()[1:]]
        assert len(rows) == 150 and all(len(r) == 7 for r in rows)
        values = np.array([[float(x) for x in r[1:]] for r in rows])
        np.testing.assert_allclose(values, recording()[:150], atol=6e-5)  # 4 decimals
        assert [int(r[0]) for r in rows[:3]] == [0, 20, 40]  # t_ms at 50 Hz
    finally:
        proc.terminate()
        proc.wait(10)
