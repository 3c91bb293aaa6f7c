"""`hartool record --labels`: live label switching by key press through real pseudo-terminals, and its errors."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import termios
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hartool.cli import cli
from hartool.cli.keys import KeyReader, key_help, label_for_key, pump_keys
from hartool.core.csvformat import read_csv_session
from hartool.sim.device import VirtualDevice
from hartool_testing import wait_until

LABELS = ["WALKING", "SITTING", "STANDING"]


def test_keys_map_to_labels() -> None:
    assert [label_for_key(k, LABELS) for k in "1230x4"] == ["WALKING", "SITTING", "STANDING", "", None, None]
    assert key_help(LABELS) == "1 WALKING, 2 SITTING, 3 STANDING, 0 none, q stop"


def test_key_reader_uses_cbreak_on_a_pty_and_pumps_label_events() -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        events: queue.Queue[str] = queue.Queue()
        stop = threading.Event()
        with KeyReader(slave) as reader:
            mode = termios.tcgetattr(slave)
            assert not mode[3] & termios.ICANON and not mode[3] & termios.ECHO  # keys arrive without Enter
            assert mode[3] & termios.ISIG  # Ctrl-C still interrupts
            os.write(master, b"1x2\n03")
            os.write(master, b"q9")  # q stops: the 9 after it is never read as a label
            thread = threading.Thread(target=pump_keys, args=(reader, LABELS, events, stop))
            thread.start()
            thread.join(timeout=30)
        assert not thread.is_alive() and stop.is_set()
        assert termios.tcgetattr(slave) == before  # the terminal is given back as it was
        got = []
        while not events.empty():
            got.append(events.get_nowait())
        assert got == ["WALKING", "SITTING", "", "STANDING"]
    finally:
        os.close(master)
        os.close(slave)


def test_key_source_that_closes_ends_only_the_key_thread() -> None:
    read_fd, write_fd = os.pipe()  # a script piping keys in: no terminal, no cbreak
    os.write(write_fd, b"2")
    os.close(write_fd)
    events: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    with KeyReader(read_fd) as reader:
        pump_keys(reader, LABELS, events, stop)
    os.close(read_fd)
    assert events.get_nowait() == "SITTING" and not stop.is_set()


def _labels_in(path: Path) -> list[str]:
    if not path.exists():
        return []
    rows = [ln for ln in path.read_text().splitlines() if ln.count(",") == 7 and not ln.startswith("t_s,")]
    return [ln.rsplit(",", 1)[1] for ln in rows]


def test_record_switches_labels_live_from_a_pty_key_source(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0, 0.5, size=(500, 6)).astype(np.float32)
    out = tmp_path / "data" / "alice_1.csv"
    part = out.with_name(f".{out.name}.part")  # flushed about once a second while recording
    key_master, key_slave = os.openpty()
    with VirtualDevice(values, rate_hz=50, speed=4, loop=True, paused=True) as device:
        device.start()
        proc = subprocess.Popen(
            [sys.executable, "-m", "hartool", "record", "--port", device.port_path, "--labels", ",".join(LABELS),
             "--subject", "alice", "--rate", "50", "--out", str(out), "--keys", os.ttyname(key_slave)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        try:
            wait_until(lambda: _labels_in(part).count("") > 20, "unlabelled rows")
            os.write(key_master, b"1")
            wait_until(lambda: _labels_in(part).count("WALKING") > 20, "WALKING rows")
            os.write(key_master, b"3")
            wait_until(lambda: _labels_in(part).count("STANDING") > 20, "STANDING rows")
            os.write(key_master, b"0")
            wait_until(lambda: _labels_in(part)[-1:] == [""] and _labels_in(part).count("STANDING") > 0
                  and _labels_in(part)[-20:] == [""] * 20, "unlabelled rows again")
            os.write(key_master, b"q")
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            os.close(key_master)
            os.close(key_slave)
    assert proc.returncode == 0, stderr
    session = read_csv_session(out)
    labels = session.labels
    # Runs in key order: none, WALKING, STANDING, none (the switch lands between two samples).
    runs = [labels[0]] + [b for a, b in zip(labels, labels[1:], strict=False) if a != b]
    assert runs == ["", "WALKING", "STANDING", ""]
    assert session.meta["subject"] == "alice" and session.meta["labels"] == "WALKING,SITTING,STANDING"
    assert "keys: 1 WALKING, 2 SITTING, 3 STANDING, 0 none, q stop" in stderr and "end: stopped" in stderr
    table = {ln.split()[0]: ln.split()[1:] for ln in stdout.splitlines()[2:]}
    assert set(table) == {"(none)", "WALKING", "STANDING"}
    for name, key in (("(none)", ""), ("WALKING", "WALKING"), ("STANDING", "STANDING")):
        n = labels.count(key)
        assert int(table[name][1]) == n
        assert float(table[name][0]) == pytest.approx(n * 0.02, abs=0.05)  # seconds = samples / 50 Hz


def test_record_needs_a_label_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["record", "--port", "loop://", "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "give --label (one activity) or --labels" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--labels", ",".join(f"L{i}" for i in range(10))], "10 labels, but only keys 1..9 switch labels"),
    (["--labels", "WALKING,walking"], "a label is named twice"),
    (["--labels", "WALKING,SITTING", "--label", "LAYING"], "'LAYING' is not one of --labels"),
])
def test_record_label_option_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["record", "--port", "loop://", "--out", str(tmp_path / "x.csv"), *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_record_lsb_without_raw_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["record", "--port", "loop://", "--label", "WALKING", "--acc-lsb", "0.001",
                                      "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --acc-lsb only applies with --acc-unit raw (got --acc-unit g)"
    assert not list(tmp_path.iterdir())


def test_record_reads_a_phone_app_over_tcp_listen_across_wifi_drops(tmp_path: Path) -> None:
    """HyperIMU CSV (epoch ms, acc in m/s2, a magnetometer too) from a phone that connects to us, and whose
    Wi-Fi drops twice: the session goes on over each new connection."""
    import socket

    from hartool.sim.apps import hyperimu_packets
    from hartool.sim.senders import SenderThread, send_tcp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rng = np.random.default_rng(1)
    values = np.column_stack([rng.normal(0, 0.3, (200, 3)) + [0, 0, 1], rng.normal(0, 0.5, (200, 3))])
    packets = hyperimu_packets(values, 50.0, rate_hz=100.0, jitter_ms=0.0, lines_per_packet=5,
                               start_epoch_ms=1_700_000_000_000)
    out = tmp_path / "phone.csv"
    part = out.with_name(f".{out.name}.part")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hartool", "record", "--port", f"tcp-listen://127.0.0.1:{port}", "--label", "WALKING",
         "--columns", "t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z", "--acc-unit", "m/s2", "--subject", "phone",
         "--out", str(out), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL)
    sender = SenderThread(lambda stop: send_tcp(packets, "127.0.0.1", port, speed=0, stop=stop,
                                                connect_timeout_s=60, drop_every=150))
    try:
        sender.start()
        sent = sender.result(60)
        wait_until(lambda: len(_labels_in(part)) >= sent.samples, "every line on disk")
        proc.send_signal(2)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    stats = json.loads(stdout)
    assert (sent.connections, stats["reconnects"], stats["end_reason"]) == (3, 2, "stopped")
    session = read_csv_session(out)
    assert len(session.values) == sent.samples  # every line, the first one too (a socket starts at a line)
    np.testing.assert_allclose(np.diff(session.t_s), 0.01, atol=1e-6)  # epoch ms -> seconds from 0
    assert session.t_s[0] == 0.0 and session.meta["units"] == "acc=g gyro=rad/s"
    assert abs(float(session.values[:, 2].mean()) - 1.0) < 0.1  # gravity in g, not 9.8


def test_record_aligns_sensor_logger_clocks_from_http_push(tmp_path: Path) -> None:
    """Sensor Logger POSTs acc (without gravity), gravity and gyro on their own ns clocks: one 50 Hz grid."""
    import socket

    from hartool.sim.apps import sensorlogger_packets
    from hartool.sim.senders import SenderThread, post_http

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/data"
    rng = np.random.default_rng(2)
    values = np.column_stack([rng.normal(0, 0.2, (300, 3)) + [0, 0, 1], rng.normal(0, 0.5, (300, 3))])
    packets = sensorlogger_packets(values, 50.0, rate_hz=100.0, jitter_ms=1.0, start_epoch_ns=1_700_000_000 * 10**9)
    out = tmp_path / "sl.csv"
    part = out.with_name(f".{out.name}.part")
    sender = SenderThread(lambda stop: post_http(packets, url, speed=0, stop=stop, connect_timeout_s=60))
    proc = subprocess.Popen([sys.executable, "-m", "hartool", "record", "--port", url, "--label", "SITTING",
                             "--rate", "50", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    try:
        sender.start()
        sender.result(60)
        # 6 s of data: stop once the grid has reached its last second (the part file is flushed each second).
        wait_until(lambda: len(_labels_in(part)) >= 250, "aligned rows")
        proc.send_signal(2)  # Ctrl-C: ends the session like q, keeping every row
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    session = read_csv_session(out)
    np.testing.assert_allclose(np.diff(session.t_s), 0.02, atol=1e-6)  # one 50 Hz grid in seconds
    # acc without gravity + gravity = total acceleration in g (the app sends m/s2).
    assert abs(float(session.values[:, 2].mean()) - 1.0) < 0.1
    assert "end: stopped" in stderr and stdout.splitlines()[2].split()[0] == "SITTING"
