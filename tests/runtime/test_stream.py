"""`hartool stream` over real pseudo-terminals driven by the virtual device: values, counts and faults."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hartool.cli import cli
from hartool.core.bundle import Bundle
from hartool.core.preprocess import preprocess
from hartool.data import load_dataset, recording_for_subject
from hartool.runtime.artifacts import load_bundle_predictor
from hartool.runtime.session import run_stream
from hartool.runtime.smoothing import smooth_sequence
from hartool.runtime.stream import StreamOptions, WindowPrediction
from hartool.sim.device import DEFAULT_SCALES, FaultSpec, VirtualDevice
from hartool.wire.spec import SourceSpec
from hartool.wire.text import encode_text_line

N = 2000  # samples streamed per test: 30 windows of 128 / 64


@pytest.fixture(scope="module")
def subject_values() -> np.ndarray:
    """The first N samples of held-out test subject 9 (acc in g, gyro in rad/s)."""
    recs = recording_for_subject(load_dataset("hapt"), 9)
    return np.concatenate([r.values for r in recs])[:N].astype(np.float32)


def _stream(bundle: Path, device: VirtualDevice, **kw: object) -> tuple[list[WindowPrediction], object, list[str]]:
    rows: list[WindowPrediction] = []
    msgs: list[str] = []
    source = {k: kw.pop(k) for k in [*kw] if k in SourceSpec.__dataclass_fields__}
    # Unsmoothed: the tests compare with offline predictions window by window.
    opts = StreamOptions(SourceSpec(device.port_path, **source), **{"duration_s": 30.0, "smooth": "none", **kw})  # type: ignore[arg-type]
    summary = run_stream(bundle, opts, rows.append, on_status=msgs.append)
    return rows, summary, msgs


def _offline(bundle: Path, values: np.ndarray, ends: list[int]) -> np.ndarray:
    b = Bundle.load(bundle)
    _, pred = load_bundle_predictor(b, "tflite-int8")
    x = np.stack([preprocess(values[e - b.window : e], b.preprocessing) for e in ends])
    return pred.predict(x)


def test_text_stream_equals_offline_predictions(quantized_bundle: Path, subject_values: np.ndarray) -> None:
    # The device unplugs itself after the last sample (having waited for the host to read everything), so
    # the stream ends when all N samples are in, however slow the machine: no max_windows race.
    with VirtualDevice(subject_values, speed=0, paused=True, faults=FaultSpec(disconnect_after=N)) as dev:
        dev.start()
        rows, summary, _ = _stream(quantized_bundle, dev, artifact="tflite-int8")
    assert summary.end_reason == "disconnected"
    assert summary.samples == N and summary.windows == 30 and summary.pending == N - (128 + 29 * 64)
    assert summary.dropped == 0 and summary.bad_lines == 0 and summary.time_unit == "ms"
    assert [r.window for r in rows] == list(range(30))
    # Millisecond timestamps at the model's rate: the resampled grid is the device's own samples.
    assert [r.t_end_s for r in rows] == pytest.approx([(127 + 64 * i) * 0.02 for i in range(30)], abs=1e-9)
    # Text carries 4 decimals; the int8 model must still give the same probabilities, to quantization.
    probs = _offline(quantized_bundle, np.round(subject_values, 4), [r.end_sample for r in rows])
    np.testing.assert_allclose(np.array([r.probs for r in rows]), probs, atol=1e-5)


def _covered(ends: list[int], window: int = 128) -> int:
    """Samples inside at least one window, from the windows' end samples (in order)."""
    covered, prev = 0, 0
    for end in ends:
        covered += end - max(prev, end - window)
        prev = end
    return covered


def test_binary_drops_are_counted(quantized_bundle: Path, subject_values: np.ndarray) -> None:
    """Sequence gaps restart windows: no window spans one, and every sample is windowed, pending or dropped."""
    faults = FaultSpec(drop_prob=0.003, clean_start=10, disconnect_after=N)
    with VirtualDevice(subject_values, speed=0, protocol="binary", faults=faults, paused=True, seed=3,
                       log_sent=True) as dev:
        dev.start()
        rows, summary, _ = _stream(quantized_bundle, dev, protocol="binary")
        injected, sent = dev.samples_dropped_injected, list(dev.sent_indices or [])
    assert injected >= 3 and summary.end_reason == "disconnected"
    assert summary.samples == len(sent) == N - injected  # the device waited until the host had read it all
    assert summary.seq_gaps == summary.gaps >= 3
    lost_at_restarts = summary.dropped - injected
    assert lost_at_restarts > 0
    assert summary.samples == _covered([r.end_sample for r in rows]) + summary.pending + lost_at_restarts
    for r in rows:  # the device's own sample numbers inside a window are consecutive: no hole inside
        idx = sent[r.end_sample - 128 : r.end_sample]
        assert idx[-1] - idx[0] == 127, (r.window, idx[0], idx[-1])
    assert rows[-1].dropped <= summary.dropped


def test_garbage_truncation_and_nan_are_bad_lines(quantized_bundle: Path, subject_values: np.ndarray) -> None:
    # The device unplugs itself after the last sample (once the host has read everything): the stream ends
    # at the end of the data, not by a clock, so every sample sent is seen however loaded the machine is.
    faults = FaultSpec(garbage_prob=0.01, truncate_prob=0.01, nan_prob=0.01, clean_start=20, disconnect_after=N)
    with VirtualDevice(subject_values, speed=0, faults=faults, paused=True, seed=1) as dev:
        dev.start()
        rows, summary, _ = _stream(quantized_bundle, dev, duration_s=300.0)  # a hang guard only
        injected = dev.garbage_bursts + dev.truncated + dev.nan_injected
        sent = dev.samples_sent
    assert summary.end_reason == "disconnected"
    assert injected > 20
    assert summary.bad_lines == injected
    assert summary.samples == sent
    # Lines lost to truncation leave 20-40 ms holes in device time: shorter than a gap, so interpolated.
    assert summary.gaps == 0 and sent < summary.grid_samples <= N
    assert len(rows) == (summary.grid_samples - 128) // 64 + 1
    assert all(np.isfinite(r.probs).all() for r in rows)


def test_wrong_channel_count_is_one_clear_line(quantized_bundle: Path, subject_values: np.ndarray) -> None:
    with VirtualDevice(subject_values[:, :3], speed=0, paused=True, timestamps=False,
                       scales=DEFAULT_SCALES[:3]) as dev:
        dev.start()
        result = CliRunner().invoke(cli, ["stream", str(quantized_bundle), "--port", dev.port_path,
                                          "--duration", "20"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "Error: device sends 3 values per line, model expects 6"


def test_rate_mismatch_warns_without_timestamps(quantized_bundle: Path, subject_values: np.ndarray) -> None:
    # Without device time the rate comes from arrival times over >= 2 s, so this one streams in real time.
    with VirtualDevice(subject_values, rate_hz=100.0, speed=1, paused=True, timestamps=False) as dev:
        dev.start()
        _, summary, msgs = _stream(quantized_bundle, dev, max_windows=3)
    assert summary.time_unit is None
    assert any(re.match(r"warning: device sends about \d+\.\d samples/s, the model was trained at 50 Hz", m)
               for m in msgs), msgs


def test_timestamped_100hz_is_resampled_to_the_model_rate(quantized_bundle: Path,
                                                          subject_values: np.ndarray) -> None:
    with VirtualDevice(subject_values, rate_hz=100.0, speed=0, paused=True,
                       faults=FaultSpec(disconnect_after=N)) as dev:
        dev.start()
        rows, summary, msgs = _stream(quantized_bundle, dev)
    assert not any(m.startswith("warning") for m in msgs), msgs
    assert any("about 100.0 samples/s; resampling to the model's 50 Hz" in m for m in msgs), msgs
    # 2000 samples at 100 Hz span 19.99 s: 1000 grid samples at 50 Hz, 14 windows.
    assert summary.samples == N and summary.grid_samples == 1000 and summary.windows == 14
    assert [r.t_end_s for r in rows][:2] == pytest.approx([127 * 0.02, 191 * 0.02], abs=1e-9)


def test_unplugged_device_exits_nonzero_with_summary(quantized_bundle: Path, subject_values: np.ndarray) -> None:
    with VirtualDevice(subject_values, speed=0, paused=True, faults=FaultSpec(disconnect_after=1000)) as dev:
        dev.start()
        result = CliRunner().invoke(cli, ["stream", str(quantized_bundle), "--port", dev.port_path, "--jsonl",
                                          "--duration", "20"])
        path = dev.port_path
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[-1] == f"Error: device {path} disconnected"
    assert any(ln.startswith("summary: 1000 samples, 14 windows") for ln in lines), result.output
    windows = [json.loads(ln) for ln in lines if ln.startswith("{")]
    assert [w["window"] for w in windows] == list(range(14))


@pytest.mark.parametrize("smooth", ["none", "hmm:switch=0.05,floor=0.1,lag=3"])
def test_reconnect_keeps_streaming(quantized_bundle: Path, subject_values: np.ndarray, smooth: str) -> None:
    """A TCP 'phone' that drops the connection once: --reconnect reopens and windows keep counting (with a
    look-ahead smoother too: the windows it held at the drop come out before the new ones)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(2)
    port = server.getsockname()[1]
    halves = (subject_values[:700], subject_values[700:1400])

    def serve() -> None:
        for part in halves:
            conn, _ = server.accept()
            with conn:
                conn.recv(1)  # the host's start byte
                conn.sendall(b"banner\r\n" + b"".join(encode_text_line(v) for v in part))
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    rows: list[WindowPrediction] = []
    msgs: list[str] = []
    opts = StreamOptions(SourceSpec(f"socket://127.0.0.1:{port}", reconnect=True), max_windows=18, duration_s=20,
                         smooth=smooth)
    summary = run_stream(quantized_bundle, opts, rows.append, on_status=msgs.append)
    thread.join(5)
    assert summary.reconnects == 1
    assert 700 + 640 <= summary.samples <= 1400  # max_windows may stop before the last 60 are read
    # The window restarts after the reconnect: 9 windows from the first 700 samples, then 9 more.
    assert [r.window for r in rows] == list(range(18))
    assert [r.end_sample for r in rows][8:10] == [640, 828]
    # The 60 samples pending at the drop are lost; windows and the summary say the same.
    assert rows[8].dropped == 0 and rows[9].dropped == 60 and summary.dropped == rows[-1].dropped == 60


def test_max_windows_does_not_wait_for_look_ahead(quantized_bundle: Path, subject_values: np.ndarray) -> None:
    """A board that keeps its port open after the last sample: with lag=3 the 20th window is still delivered
    (the look-ahead it would wait for never comes), in order, and the stream ends on max_windows."""
    with VirtualDevice(subject_values[:128 + 19 * 64 + 10], speed=0, paused=True) as dev:
        dev.start()
        rows, summary, msgs = _stream(quantized_bundle, dev, max_windows=20, smooth="hmm:switch=0.05,floor=0.1,lag=3")
    assert summary.end_reason == "max_windows" and summary.windows == 20
    assert [r.window for r in rows] == list(range(20)) and [r.lag for r in rows] == [3] * 17 + [2, 1, 0]
    assert any("looks 3 windows ahead" in m and "3.8 s" in m for m in msgs), msgs


def test_a_quiet_sender_gets_its_last_windows(quantized_bundle: Path, subject_values: np.ndarray) -> None:
    """The board stops sending but keeps the port open (no EOF, no max_windows): the 3 windows a lag=3
    smoother holds are delivered once the input has been quiet longer than the look-ahead, judged from the
    windows there were; the stream goes on (here until the test stops it)."""
    method = "hmm:switch=0.05,floor=0.1,lag=3"
    stop = threading.Event()
    rows: list[WindowPrediction] = []

    def on_window(p: WindowPrediction) -> None:
        rows.append(p)
        if len(rows) == 20:
            stop.set()

    with VirtualDevice(subject_values[:128 + 19 * 64 + 10], speed=0, paused=True) as dev:
        dev.start()
        summary = run_stream(quantized_bundle, StreamOptions(SourceSpec(dev.port_path), smooth=method, duration_s=60.0),
                             on_window, stop=stop)
    assert summary.end_reason == "stopped" and summary.windows == 20
    assert [r.window for r in rows] == list(range(20)) and [r.lag for r in rows] == [3] * 17 + [2, 1, 0]
    raw = np.array([r.raw_probs for r in rows])
    np.testing.assert_allclose([r.probs for r in rows], smooth_sequence(method, raw), atol=1e-6)


def test_noise_gives_baud_hint(quantized_bundle: Path) -> None:
    master, slave = os.openpty()
    import tty

    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    rng = np.random.default_rng(0)

    def noise() -> None:
        for _ in range(40):
            try:
                os.write(master, rng.integers(1, 255, 256, dtype=np.uint8).tobytes().replace(b"\n", b""))
            except OSError:
                return
            threading.Event().wait(0.02)

    threading.Thread(target=noise, daemon=True).start()
    msgs: list[str] = []
    summary = run_stream(quantized_bundle, StreamOptions(SourceSpec(path, protocol="text"), duration_s=2.0),
                         lambda _r: None, on_status=msgs.append)
    os.close(master)
    os.close(slave)
    assert summary.windows == 0
    assert any("check --baud" in m for m in msgs), msgs


def test_stream_never_imports_tensorflow(quantized_bundle: Path, subject_values: np.ndarray, tmp_path: Path) -> None:
    replay = tmp_path / "replay.txt"
    replay.write_bytes(b"".join(encode_text_line(v) for v in subject_values[:600]))
    code = (
        "import sys\nfrom hartool.cli import cli\n"
        "try:\n    cli.main(sys.argv[1:], prog_name='hartool')\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, "stream", str(quantized_bundle), "--port", str(replay),
                           "--jsonl"], capture_output=True, text=True, timeout=120, check=True)
    assert "HEAVY []" in proc.stderr, proc.stderr
    assert len(proc.stdout.splitlines()) == (600 - 128) // 64 + 1
