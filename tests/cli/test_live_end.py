"""Live sources end cleanly: `simulate` exits after its recording (a pty board drains and unplugs, an app
sender stops), and `stream` says when a sender went quiet and `--until-quiet S` ends it (real pty, real
sockets, the real CLI)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from hartool.core.csvformat import format_header, format_row, read_csv_session
from hartool_testing import hartool


def _recording(path: Path, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.column_stack([rng.normal(0, 0.3, (n, 3)) + [0, 0, 1], rng.normal(0, 1.0, (n, 3))])
    text = format_header({"subject": "9", "sample_rate_hz": 50})
    path.write_text(text + "".join(format_row(i / 50, row, "WALKING") for i, row in enumerate(values)))
    return read_csv_session(path).values


def test_simulate_on_a_pty_exits_after_its_recording_and_the_host_got_every_sample(tmp_path: Path) -> None:
    values = _recording(tmp_path / "src.csv", 300)
    sim = subprocess.Popen([sys.executable, "-m", "hartool", "simulate", "--csv", str(tmp_path / "src.csv"),
                            "--speed", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           stdin=subprocess.DEVNULL)
    try:
        assert sim.stdout is not None
        pty = sim.stdout.readline().strip()
        out = tmp_path / "got.csv"
        rec = hartool("record", "--port", pty, "--label", "WALKING", "--out", str(out), "--json")
        _, sim_err = sim.communicate(timeout=60)  # it ends by itself: no signal sent
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.communicate()
    assert sim.returncode == 0 and "sent 300 samples" in sim_err, sim_err
    assert '"end_reason": "disconnected"' in rec.stdout
    np.testing.assert_allclose(read_csv_session(out).values, values, atol=1e-4)


def test_stream_tells_a_quiet_sender_once_and_until_quiet_ends_it(quantized_bundle: Path, tmp_path: Path) -> None:
    _recording(tmp_path / "src.csv", 400)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stream = subprocess.Popen(
        [sys.executable, "-m", "hartool", "stream", str(quantized_bundle), "--port", f"tcp-listen://127.0.0.1:{port}",
         "--columns", "t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z", "--acc-unit", "m/s2", "--time-unit", "ms",
         "--smooth", "none", "--until-quiet", "10.5", "--jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        # An app sender exits after its last packet (it retries the connection while the stream starts).
        sim = hartool("simulate", "--as", "hyperimu-tcp", "--to", f"127.0.0.1:{port}", "--csv",
                      str(tmp_path / "src.csv"), "--rate", "50", "--jitter-ms", "0", "--speed", "0")
        stdout, stderr = stream.communicate(timeout=120)
    finally:
        if stream.poll() is None:
            stream.kill()
            stream.communicate()
    sent = int(re.search(r"sent \d+ packets \((\d+) readings", sim.stderr).group(1))
    assert stream.returncode == 0, stderr
    assert stderr.count("no samples for 10 s: the sender is quiet") == 1, stderr
    summary = re.search(r"summary: (\d+) samples, (\d+) windows .*; end: quiet$", stderr, re.M)
    assert summary is not None, stderr
    assert int(summary.group(1)) == sent == 400
    assert len(stdout.splitlines()) == int(summary.group(2)) >= 4


def test_device_rate_is_read_from_the_median_spacing(quantized_bundle: Path, tmp_path: Path) -> None:
    """100 Hz with 2 ms jitter and every 20th sample lost: the summary says 100.0 Hz, not first-to-last's ~95."""
    rng = np.random.default_rng(5)
    n = 3000
    t_ms = np.maximum.accumulate(np.round(np.arange(n) * 10.0 + rng.normal(0, 2.0, n)).astype(int))
    keep = np.arange(n) % 20 != 19
    values = np.column_stack([rng.normal(0, 0.3, (n, 3)) + [0, 0, 1], rng.normal(0, 1.0, (n, 3))])
    src = tmp_path / "jitter.txt"
    src.write_text("".join(f"{t}," + ",".join(f"{v:.4f}" for v in row) + "\n"
                           for t, row in zip(t_ms[keep], values[keep], strict=True)))
    proc = hartool("stream", str(quantized_bundle), "--port", str(src), "--time-unit", "ms", "--smooth", "none")
    assert "; device rate 100.0 Hz" in proc.stderr, proc.stderr


def test_simulate_says_the_speed_it_reached(tmp_path: Path) -> None:
    """UDP needs no listener: the sender runs as fast as it can (--speed 0) or misses an impossible speed."""
    _recording(tmp_path / "src.csv", 500)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:  # a bound port that swallows the datagrams
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        base = ["simulate", "--as", "hyperimu-udp", "--to", f"127.0.0.1:{port}", "--csv", str(tmp_path / "src.csv")]
        fast = hartool(*base, "--speed", "0")
        slow = hartool(*base, "--speed", "1000000")
    reached = re.search(r"as fast as possible: about (\d+\.\d)x real time", fast.stderr)
    assert reached is not None and float(reached.group(1)) > 0, fast.stderr
    missed = re.search(r"warning: could not keep x1e\+06: reached about x(\d+\.\d) real time", slow.stderr)
    assert missed is not None and float(missed.group(1)) < 1e6, slow.stderr
