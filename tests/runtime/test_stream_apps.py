"""`hartool stream` fed as phones and boards really send: micros() text over a pty, Sensor Logger JSON, HyperIMU
CSV over a listening TCP socket. Real ptys and sockets; the senders are hartool.sim's app builders."""

from __future__ import annotations

import json
import os
import select
import threading
import tty
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hartool.cli import cli
from hartool.data import load_dataset, recording_for_subject
from hartool.runtime.session import run_stream
from hartool.runtime.stream import StreamOptions, WindowPrediction
from hartool.sim.apps import hyperimu_packets, mcu_packets, sensorlogger_packets
from hartool.sim.senders import send_tcp
from hartool.wire.spec import SourceSpec

N = 1300  # 26 s of the recording at 50 Hz


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    recs = recording_for_subject(load_dataset("hapt"), 9)
    return np.concatenate([r.values for r in recs])[:N].astype(np.float64)


def _windows(seconds: float) -> int:
    return (int(seconds * 50) + 1 - 128) // 64 + 1


def test_mcu_micros_over_a_pty_gives_t_end_s_in_jsonl(quantized_bundle: Path, values: np.ndarray) -> None:
    """104 Hz with micros() timestamps that wrap mid-stream: detected as us, resampled, no gap, t_end_s right."""
    packets = mcu_packets(values, 50.0, 104.0, boot_us=4_294_000_000)
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    expected = _windows((N - 1) / 50.0)

    def write() -> None:
        # Like a sketch waiting in setup() for the host: start on the host's 's' (sent once the port is open;
        # bytes written before that would be flushed by the open).
        ready, _, _ = select.select([master], [], [], 120)
        if not ready or os.read(master, 1) != b"s":
            return
        os.write(master, b"MPU ready\r\n")
        try:
            for k in range(0, len(packets), 64):
                os.write(master, b"".join(p.data for p in packets[k:k + 64]))
        except OSError:
            return

    threading.Thread(target=write, daemon=True).start()
    try:
        result = CliRunner().invoke(cli, ["stream", str(quantized_bundle), "--port", os.ttyname(slave), "--jsonl",
                                          "--max-windows", str(expected), "--duration", "120", "--smooth", "0"])
    finally:
        os.close(master)
        os.close(slave)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert "device timestamps are in us" in result.output
    assert len(rows) == expected and [r["window"] for r in rows] == list(range(expected))
    # The grid starts at the first sample (t = 0): window i ends at grid sample 127 + 64 i.
    assert [r["t_end_s"] for r in rows] == pytest.approx([(127 + 64 * i) / 50 for i in range(expected)], abs=1e-3)
    assert all(len(r["raw_probs"]) == len(r["probs"]) and r["head"] == "model" for r in rows)
    assert all(r["dropped"] == 0 for r in rows)
    summary = next(line for line in result.output.splitlines() if line.startswith("  device time"))
    assert summary.startswith("  device time us:") and "gaps 0 " in summary


def test_sensor_logger_json_replay_aligns_three_clocks(quantized_bundle: Path, values: np.ndarray,
                                                       tmp_path: Path) -> None:
    packets = sensorlogger_packets(values, 50.0, 100.0, 2.0, batch_s=0.5, start_epoch_ns=1_700_000_000_000_000_000)
    lines = []
    for k, p in enumerate(packets):
        doc = json.loads(p.data)
        if k % 2:  # a sensor the model does not use, as Sensor Logger sends when the user enables it
            doc["payload"].append({"name": "magnetometer", "time": doc["payload"][0]["time"],
                                   "values": {"x": 1, "y": 2, "z": 3}})
        lines.append(json.dumps(doc))
    lines.insert(3, '{"messageId": 99, "payload": []}')  # a bad batch: counted, the stream goes on
    replay = tmp_path / "sensorlogger.jsonl"
    replay.write_text("\n".join(lines) + "\n")
    rows: list[WindowPrediction] = []
    msgs: list[str] = []
    summary = run_stream(quantized_bundle, StreamOptions(SourceSpec(str(replay)), duration_s=120), rows.append, msgs.append)
    assert summary.end_reason == "eof" and summary.protocol == "json" and summary.time_unit == "ns"
    assert any("aligning 3 sensor clocks (accelerometer, gravity, gyroscope)" in m for m in msgs), msgs
    assert summary.unknown_sensors == len(packets) // 2 and summary.bad_batches == 1
    assert summary.gaps == 0 and summary.backwards == 0
    # Three clocks with random offsets < 10 ms and 0.2 % skew: the grid spans ~ the recording.
    assert abs(summary.grid_samples - N) <= 0.01 * N
    assert len(rows) == summary.windows >= _windows((N - 1) / 50.0) - 1
    assert summary.grid_samples == _covered_plus_pending(rows, summary.pending)
    t_end = np.array([r.t_end_s for r in rows])
    np.testing.assert_allclose(np.diff(t_end), 64 / 50, atol=1e-6)
    assert 127 / 50 <= t_end[0] <= 127 / 50 + 0.011


def _covered_plus_pending(rows: list[WindowPrediction], pending: int) -> int:
    return rows[-1].end_sample + pending if rows else pending


def test_hyperimu_csv_over_tcp_listen_with_columns(quantized_bundle: Path, values: np.ndarray) -> None:
    """The phone is the client: hartool listens, HyperIMU connects and sends epoch-ms CSV with magnetometer."""
    import socket

    with socket.socket() as probe:  # a free port for the listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    packets = hyperimu_packets(values, 50.0, 100.0, 2.0, lines_per_packet=5, start_epoch_ms=1_700_000_000_000)
    sender = threading.Thread(target=send_tcp, args=(packets, "127.0.0.1", port, 0.0), daemon=True)
    sender.start()
    expected = _windows((N - 1) / 50.0) - 1
    rows: list[WindowPrediction] = []
    source = SourceSpec(f"tcp-listen://127.0.0.1:{port}", columns="t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z",
                        acc_unit="m/s2", time_unit="ms")
    opts = StreamOptions(source, max_windows=expected, duration_s=120)
    summary = run_stream(quantized_bundle, opts, rows.append)
    sender.join(10)
    assert summary.end_reason == "max_windows" and len(rows) == expected
    assert summary.time_unit == "ms" and summary.gaps == 0 and summary.bad_lines == 0
    assert summary.port_counters.get("connections", 0) >= 1
    np.testing.assert_allclose(np.diff([r.t_end_s for r in rows]), 64 / 50, atol=1e-6)


def test_columns_naming_an_unknown_channel_fails_before_listening(quantized_bundle: Path) -> None:
    result = CliRunner().invoke(cli, ["stream", str(quantized_bundle), "--port", "tcp-listen://127.0.0.1:1",
                                      "--columns", "t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_w"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("Error: --columns names unknown channel 'gyro_w'")


@pytest.mark.parametrize(("args", "msg"), [
    (["--smooth", "0"], None),
    (["--smooth", "-2"], "smoothing window must be >= 0"),
    (["--smooth", "median:3"], "unknown smoothing method"),
    (["--threads", "0"], "0 is not in the range"),
    (["--min-confidence", "1.5"], "1.5 is not in the range"),
    (["--acc-lsb", "0.001"], "--acc-lsb only applies with --acc-unit raw"),
])
def test_option_validation_is_one_line(quantized_bundle: Path, tmp_path: Path, args: list[str],
                                       msg: str | None) -> None:
    replay = tmp_path / "empty.txt"
    replay.write_text("")
    result = CliRunner().invoke(cli, ["stream", str(quantized_bundle), "--port", str(replay), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if msg is None:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0 and msg in result.output, result.output


def test_time_unit_auto_says_when_it_cannot_tell(quantized_bundle: Path, tmp_path: Path) -> None:
    replay = tmp_path / "slow.txt"
    replay.write_text("".join(f"{300 * k},0,0,1,0,0,0\n" for k in range(4)))
    result = CliRunner().invoke(cli, ["stream", str(quantized_bundle), "--port", str(replay)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(
        "Error: cannot tell the device's time unit: timestamps advance by 300 per sample")
    ok = CliRunner().invoke(cli, ["stream", str(quantized_bundle), "--port", str(replay), "--time-unit", "ms"])
    assert ok.exit_code == 0, ok.output


def test_hyperimu_csv_without_options_is_read_and_the_unit_slip_is_named(quantized_bundle: Path, values: np.ndarray,
                                                                        tmp_path: Path) -> None:
    replay = tmp_path / "hyperimu.csv"
    replay.write_bytes(b"".join(p.data for p in hyperimu_packets(values, 50.0, start_epoch_ms=1_700_000_000_000)))
    rows: list[WindowPrediction] = []
    msgs: list[str] = []
    summary = run_stream(quantized_bundle, StreamOptions(SourceSpec(str(replay))), rows.append, msgs.append)
    assert any("3 more fields per line ignored" in m for m in msgs), msgs
    assert any(m.startswith("device timestamps are in ms") for m in msgs), msgs
    assert any(m.startswith("warning: acceleration looks like m/s2 (median |acc| ") and "--acc-unit m/s2" in m
               for m in msgs), msgs
    assert summary.time_unit == "ms" and summary.bad_lines == 0 and len(rows) == _windows((N - 1) / 50.0)


def test_m_s2_sent_as_g_is_named_when_lines_come_one_by_one(quantized_bundle: Path) -> None:
    """A phone app's m/s2 read as g (|acc| ~ 9.8 g at rest), one UDP datagram per line as such apps send:
    the warning is judged over the first samples, not within one batch (a live line is a batch of one)."""
    import socket

    from services import free_port

    port = free_port()
    done = threading.Event()

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while not done.wait(0.002):  # until the stream has its windows: no timing assumption
                sock.sendto(b"0.12,9.71,0.53,0.01,0.02,0.0\n", ("127.0.0.1", port))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    rows: list[WindowPrediction] = []
    msgs: list[str] = []
    try:
        summary = run_stream(quantized_bundle, StreamOptions(SourceSpec(f"udp://127.0.0.1:{port}"), max_windows=2,
                                                             duration_s=120, smooth="none"), rows.append, msgs.append)
    finally:
        done.set()
        sender.join(10)
    assert summary.end_reason == "max_windows" and len(rows) == 2
    warnings = [m for m in msgs if "looks like m/s2" in m]
    assert warnings == ["warning: acceleration looks like m/s2 (median |acc| 9.7): pass --acc-unit m/s2, "
                        "or --acc-unit g --units-confirmed"], msgs
