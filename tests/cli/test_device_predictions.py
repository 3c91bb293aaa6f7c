"""A board that classifies by itself: `hartool simulate --classify` (the bundle exported to C, built with the host
gcc) on a real pty sends prediction messages, and `hartool stream` shows and publishes them like its own windows
(real CLI, real pty, real MQTT broker). Every window the board classified is accounted for, and its labels are
what the host C build computes for the same windows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hartool.bench.mcu import HostLibrary
from hartool.core.csvformat import format_header, format_row, read_csv_session
from hartool.export.c.library import export_c
from hartool.wire.batch import DevicePrediction
from hartool.wire.mqtt import parse_mqtt_url
from hartool.wire.prediction import encode_prediction_frame, prob_counts
from hartool_testing import hartool
from mqtt_testing import Recorder

WINDOW, STRIDE = 128, 64


@pytest.fixture(scope="module")
def host_c(quantized_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> HostLibrary:
    if not __import__("shutil").which("gcc"):
        pytest.skip("no host gcc to build the exported library")
    out = tmp_path_factory.mktemp("board")
    export_c(quantized_bundle, out / "lib")
    return HostLibrary(out / "lib" / "src", out / "build")


def _recording(path: Path, windows: int, seed: int) -> np.ndarray:
    """A CSV recording of exactly ``windows`` windows (varied motion, so the labels differ)."""
    n = WINDOW + STRIDE * (windows - 1)
    rng = np.random.default_rng(seed)
    amp = np.repeat(rng.uniform(0.05, 1.5, n // STRIDE + 1), STRIDE)[:n, None]
    values = np.column_stack([rng.normal(0, 0.3, (n, 3)) * amp + [0, 0, 1], rng.normal(0, 1.0, (n, 3)) * amp])
    text = format_header({"subject": "9", "sample_rate_hz": 50})
    path.write_text(text + "".join(format_row(i / 50, row, "WALKING") for i, row in enumerate(values)))
    return read_csv_session(path).values


def _expected(lib: HostLibrary, values: np.ndarray) -> list[tuple[int, list[float]]]:
    """(label, probs as the wire carries them) of every window, from the host C build's hartool_classify."""
    out = []
    for k in range((len(values) - WINDOW) // STRIDE + 1):
        label, probs = lib.classify(values[k * STRIDE : k * STRIDE + WINDOW])
        out.append((label, [round(c / 256, 5) for c in prob_counts(probs)]))
    return out


def _run(bundle: Path, sim_args: list[str], stream_args: list[str]) -> tuple[str, str, str]:
    """Start the simulated board, stream from its pty until it unplugs; (stream stdout, stream stderr, sim stderr)."""
    sim = subprocess.Popen([sys.executable, "-m", "hartool", "simulate", "--bundle", str(bundle), "--speed", "0",
                            *sim_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           stdin=subprocess.DEVNULL)
    try:
        assert sim.stdout is not None
        pty = sim.stdout.readline().strip()
        assert pty.startswith("/dev/"), sim.stderr.read() if sim.stderr else ""
        stream = hartool("stream", str(bundle), "--port", pty, "--smooth", "none", *stream_args, check=False)
        _, sim_err = sim.communicate(timeout=120)  # it ends by itself after its recording
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.communicate()
    assert sim.returncode == 0, sim_err
    return stream.stdout, stream.stderr, sim_err


def _device_summary(stderr: str) -> tuple[int, int, int]:
    m = re.search(r"device predictions (\d+) \(malformed (\d+), refused (\d+)", stderr)
    assert m is not None, stderr
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def test_binary_board_predictions_reach_jsonl_and_mqtt_with_the_host_c_labels(
        quantized_bundle: Path, host_c: HostLibrary, mqtt_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    values = _recording(tmp_path / "rec.csv", 9, seed=1)
    want = _expected(host_c, values)
    labels = json.loads((quantized_bundle / "manifest.json").read_text())["labels"]
    url = parse_mqtt_url(mqtt_broker.url("t-device"))
    with Recorder(url, "t-device/#") as rec:
        out, err, sim_err = _run(quantized_bundle, ["--csv", str(tmp_path / "rec.csv"), "--classify", "--protocol",
                                                    "binary"],
                                 ["--jsonl", "--publish", mqtt_broker.url("t-device"), "--device-name", "board1"])
        published = rec.windows()
    rows = [json.loads(line) for line in out.splitlines()]
    assert "sent 9 predictions of 9 windows (0 dropped, 0 truncated)" in sim_err, sim_err
    assert [r["window"] for r in rows] == list(range(9))                       # every window, in order
    assert all(r["source"] == "device" for r in rows)
    assert [r["label"] for r in rows] == [labels[lab] for lab, _ in want]
    assert [r["probs"] for r in rows] == [p for _, p in want]
    assert [r["t_end_s"] for r in rows] == [round(k * STRIDE / 50, 4) for k in range(9)]  # the board's clock
    assert _device_summary(err) == (9, 0, 0)
    assert re.search(r"summary: 0 samples, 0 windows", err)                  # the host classified nothing itself
    # MQTT: the same objects as JSONL (e2e_us is final only once the window left the stream loop).
    assert [{**w, "e2e_us": 0} for w in published] == [{**r, "e2e_us": 0} for r in rows]


def test_text_board_with_faults_counts_every_window(quantized_bundle: Path, host_c: HostLibrary,
                                                    tmp_path: Path) -> None:
    values = _recording(tmp_path / "rec.csv", 40, seed=2)
    want = _expected(host_c, values)
    out, err, sim_err = _run(quantized_bundle, ["--csv", str(tmp_path / "rec.csv"), "--classify", "--protocol", "text",
                                                "--truncate", "0.2", "--drop", "0.15", "--garbage", "0.01",
                                                "--seed", "3"], ["--jsonl"])
    m = re.search(r"sent (\d+) predictions of 40 windows \((\d+) dropped, (\d+) truncated\)", sim_err)
    assert m is not None, sim_err
    sent, dropped, truncated = map(int, m.groups())
    assert sent + dropped + truncated == 40 and truncated > 0 and dropped > 0
    rows = [json.loads(line) for line in out.splitlines()]
    shown, malformed, refused = _device_summary(err)
    assert shown == len(rows) == sent and malformed == truncated and refused == 0
    labels = json.loads((quantized_bundle / "manifest.json").read_text())["labels"]
    assert all(r["label"] == labels[want[r["window"]][0]] for r in rows)       # the lost ones leave window gaps
    assert len({r["window"] for r in rows}) == sent
    assert int(re.search(r"bad lines (\d+)", err).group(1)) > 0               # the garbage, counted apart


def test_board_sending_samples_and_predictions_keeps_both_paths(quantized_bundle: Path, host_c: HostLibrary,
                                                               tmp_path: Path) -> None:
    _recording(tmp_path / "rec.csv", 6, seed=4)
    out, err, sim_err = _run(quantized_bundle, ["--csv", str(tmp_path / "rec.csv"), "--classify", "both",
                                                "--protocol", "binary"], ["--jsonl"])
    rows = [json.loads(line) for line in out.splitlines()]
    device = [r for r in rows if r["source"] == "device"]
    host = [r for r in rows if r["source"] == "host"]
    assert "sent 448 samples" in sim_err and len(device) == 6
    assert len(host) == 6 and re.search(r"summary: 448 samples, 6 windows", err)   # the host's own windows too
    assert [r["window"] for r in device] == [r["window"] for r in host] == list(range(6))
    assert all(r["inference_us"] == 0 for r in device) and all(r["inference_us"] > 0 for r in host)


def test_predictions_over_another_class_count_are_refused_with_one_line(quantized_bundle: Path,
                                                                        tmp_path: Path) -> None:
    wrong = [DevicePrediction(k, 0, (200, 30, 26), 100 * k) for k in range(3)]
    right = [DevicePrediction(k, 2, (10, 10, 200, 10, 10, 16), 100 * k) for k in range(2)]
    path = tmp_path / "board.bin"
    path.write_bytes(b"\x00" + b"".join(map(encode_prediction_frame, [*wrong, *right])) + b"\x05garbage\x00")
    res = hartool("stream", str(quantized_bundle), "--port", str(path), "--protocol", "binary", "--jsonl")
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    labels = json.loads((quantized_bundle / "manifest.json").read_text())["labels"]
    assert [(r["window"], r["label"], r["confidence"]) for r in rows] == [(0, labels[2], 0.78125), (1, labels[2], 0.78125)]
    assert res.stderr.count("device sends predictions over 3 classes, the bundle has 6 labels") == 1
    assert _device_summary(res.stderr) == (2, 0, 3)
    assert re.search(r"bad frames 1\b", res.stderr)
