"""End to end: `hartool stream` listening on tcp-listen/udp/http/mqtt while a simulated app sends a real
recording at ~100 Hz with jitter (104 Hz micros() for the MCU), against the same recording replayed at 50 Hz."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hartool.core.csvformat import format_header, format_row
from hartool.data import load_dataset, recording_for_subject
from hartool.sim.play import app_packets, play_app
from hartool_testing import hartool
from services import MqttBroker, free_port

GUARD_S = 120.0
SECONDS = 30  # 1,500 samples at 50 Hz: 22 windows of 128 with stride 64
COLUMNS = "t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"


@pytest.fixture(scope="module")
def walk_slice(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, Path]:
    """30 s of a held-out subject's recording (g, rad/s at 50 Hz) and the same as a `record` CSV."""
    ds = load_dataset("hapt")
    values = np.concatenate([r.values for r in recording_for_subject(ds, 9)])[2000 : 2000 + 50 * SECONDS]
    path = tmp_path_factory.mktemp("apps") / "slice.csv"
    path.write_text(format_header({"sample_rate_hz": 50}) +
                    "".join(format_row(i / 50.0, row) for i, row in enumerate(values.tolist())))
    return values, path


@pytest.fixture(scope="module")
def reference(quantized_bundle: Path, walk_slice: tuple[np.ndarray, Path]) -> list[dict]:
    """The windows of the plain 50 Hz replay."""
    proc = hartool("stream", str(quantized_bundle), "--port", str(walk_slice[1]), "--jsonl", timeout=300)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == (50 * SECONDS - 128) // 64 + 1
    return rows


def _default_sigint() -> None:
    # A suite started in the background by a shell without job control inherits SIGINT ignored, and Python
    # then never turns Ctrl-C into KeyboardInterrupt: the stream would not end on the signal this test sends.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_stream(bundle: Path, args: list[str], send, expected: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """Start `hartool stream ... --jsonl`, wait until it listens, run ``send()``, collect ``expected`` windows."""
    proc = subprocess.Popen([sys.executable, "-m", "hartool", "stream", str(bundle), "--jsonl", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    rows: list[dict] = []
    err: list[str] = []
    out_thread = threading.Thread(target=lambda: rows.extend(json.loads(x) for x in proc.stdout), daemon=True)
    out_thread.start()
    try:
        for line in proc.stderr:  # the status line says when the port listens: no guessing with sleeps
            err.append(line)
            if line.startswith("reading "):
                break
        assert proc.poll() is None, "".join(err)
        err_thread = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
        err_thread.start()
        send()
        deadline = time.monotonic() + GUARD_S
        while len(rows) < expected and proc.poll() is None:
            assert time.monotonic() < deadline, f"{len(rows)} of {expected} windows\n{''.join(err)}"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the stream prints its summary and ends
        proc.wait(30)
        out_thread.join(10)
    assert len(rows) >= expected, "".join(err)
    return rows


CASES = {
    "hyperimu-tcp": (["--port", "tcp-listen://127.0.0.1:{port}", "--columns", COLUMNS, "--acc-unit", "m/s2"],
                     "127.0.0.1:{port}"),
    "hyperimu-udp": (["--port", "udp://127.0.0.1:{port}", "--columns", COLUMNS, "--acc-unit", "m/s2"],
                     "127.0.0.1:{port}"),
    "sensorlogger-http": (["--port", "http://127.0.0.1:{port}/data", "--protocol", "json"],
                          "http://127.0.0.1:{port}/data"),
    "sensorlogger-mqtt": (["--port", "{broker}", "--protocol", "json"], "{broker}"),
    "mcu-tcp": (["--port", "tcp-listen://127.0.0.1:{port}", "--columns", COLUMNS], "127.0.0.1:{port}"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CASES))
def test_stream_from_a_simulated_app_matches_the_50hz_replay(kind: str, quantized_bundle: Path,
                                                            walk_slice: tuple[np.ndarray, Path],
                                                            reference: list[dict],
                                                            mqtt_broker: MqttBroker) -> None:
    values, _ = walk_slice
    port = free_port()
    broker_url = mqtt_broker.url(f"sensorlogger/{port}")
    args_t, to_t = CASES[kind]
    args = [a.format(port=port, broker=broker_url) for a in args_t]
    to = to_t.format(port=port, broker=broker_url)
    packets = app_packets(kind, values, 50.0, seed=7)
    # Resampling may leave the very last window uncovered (no sample after its last grid point).
    expected = len(reference) - 1
    # UDP has no flow control: paced at 10x real time (~1,000 datagrams/s) a default kernel buffer never fills.
    speed = 10.0 if kind.endswith("udp") else 0.0
    rows = run_stream(quantized_bundle, args, lambda: play_app(kind, packets, to, speed=speed), expected)
    ref = reference[:expected]
    # Same windows at the same device times (the app's first sample is within one period of the recording's).
    np.testing.assert_allclose([r["t_end_s"] for r in rows[:expected]], [r["t_end_s"] for r in ref], atol=0.03)
    # Same model input up to resampling: the probabilities agree closely (wrong units or clocks do not).
    probs = np.array([r["raw_probs"] for r in rows[:expected]])
    ref_probs = np.array([r["raw_probs"] for r in ref])
    assert np.mean(np.abs(probs - ref_probs)) < 0.02, np.abs(probs - ref_probs).max(axis=1)
    assert all(r["dropped"] == 0 for r in rows[:expected])
