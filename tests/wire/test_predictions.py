"""Prediction messages (a board that classifies by itself): the host decoders reproduce predictions.json, an
older decoder rejects them cleanly (a bad frame / a header line, never samples), and the reader thread hands
them over on a real pty next to the samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tty
import types
from pathlib import Path

import numpy as np
import pytest

from hartool.wire.batch import DecodedBatch, DevicePrediction
from hartool.wire.binary import BinaryDecoder
from hartool.wire.frames import encode_frame, frame_from_values
from hartool.wire.prediction import encode_prediction_frame, encode_prediction_line, prob_counts
from hartool.wire.reader import ReaderThread
from hartool.wire.serialport import SerialPort
from hartool.wire.text import TextDecoder, encode_text_line

REPO = Path(__file__).resolve().parents[2]
BEFORE = "7343877"  # the last commit before prediction messages
VECTORS = json.loads((REPO / "firmware_bridge" / "vectors" / "predictions.json").read_text())
CASES, STREAMS = VECTORS["cases"], VECTORS["streams"]


def _pred(case: dict) -> DevicePrediction:
    return DevicePrediction(case["window"], case["label"], tuple(case["counts"]), case["t_ms"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_host_codec_reproduces_the_vectors(case: dict) -> None:
    assert list(prob_counts(case["probs"])) == case["counts"]
    assert encode_prediction_frame(_pred(case)).hex() == case["frame_hex"]
    assert encode_prediction_line(_pred(case)).hex() == case["line_hex"]
    dec = BinaryDecoder(6)
    assert dec.feed(b"\x00" + bytes.fromhex(case["frame_hex"])) is None
    (got,) = dec.take_predictions()
    assert got == _pred(case) and got.probs == [c / 256 for c in case["counts"]]
    text = TextDecoder(6, skip_first_line=False)
    assert text.feed(bytes.fromhex(case["line_hex"])) is None
    assert text.take_predictions() == [_pred(case)]


@pytest.mark.parametrize("case", STREAMS, ids=[c["name"] for c in STREAMS])
def test_decoders_count_streams_as_the_vectors_say(case: dict) -> None:
    data = bytes.fromhex(case["stream_hex"])
    if case["protocol"] == "binary":
        dec: BinaryDecoder | TextDecoder = BinaryDecoder(6)
    else:
        dec = TextDecoder(6, skip_first_line=False)
    samples = 0
    for i in range(0, len(data), 5):  # chunks that cut frames and lines
        batch = dec.feed(data[i : i + 5])
        samples += 0 if batch is None else len(batch.values)
    want = case["expect"]
    assert samples == want["samples"]
    assert [_pred(p) for p in want["predictions"]] == dec.take_predictions()
    assert dec.bad_predictions == want["bad_predictions"]
    for key in ("bad_frames", "bad_lines", "header_lines"):
        if key in want:
            assert getattr(dec, key) == want[key], key


def _decoder_before_predictions(name: str):  # type: ignore[no-untyped-def]
    """hartool.wire.<name> as it was before prediction messages (commit 7343877), from git; skip without history."""
    res = subprocess.run(["git", "-C", str(REPO), "show", f"{BEFORE}:toolkit/hartool/wire/{name}.py"],
                         capture_output=True, text=True, check=False, timeout=60)
    if res.returncode != 0:
        pytest.skip(f"git history with {BEFORE} is not available (a shallow clone?)")
    module = types.ModuleType(f"hartool_old_{name}")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(res.stdout, f"old_{name}.py", "exec"), module.__dict__)  # noqa: S102 - our own source, from git
    return module


def test_a_host_from_before_rejects_a_prediction_frame_and_skips_the_line_as_a_header() -> None:
    old_binary, old_text = _decoder_before_predictions("binary"), _decoder_before_predictions("text")
    rows = np.round(np.random.default_rng(1).normal(0, 0.5, (2, 6)), 4)
    frames = [encode_frame(frame_from_values(r, i, 20 * i, [1 / 2048] * 6)) for i, r in enumerate(rows)]
    pred_frame, pred_line = bytes.fromhex(CASES[0]["frame_hex"]), bytes.fromhex(CASES[0]["line_hex"])
    dec = old_binary.BinaryDecoder(6)
    batch = dec.feed(b"\x00" + frames[0] + pred_frame + frames[1])
    assert dec.bad_frames == 1 and dec.samples == 2 and len(batch.values) == 2   # counted, never samples
    text = old_text.TextDecoder(6, skip_first_line=False)
    lines = [encode_text_line(r) for r in rows] * 2
    out = text.feed(b"".join(lines[:3]) + pred_line + lines[3])
    assert text.header_lines == 1 and text.bad_lines == 0 and text.dropped == 0 and len(out.values) == 4


def test_reader_thread_on_a_real_pty_hands_over_samples_and_predictions_in_order() -> None:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    rows = np.round(np.random.default_rng(3).normal(0, 0.5, (8, 6)), 4)
    preds = [DevicePrediction(k, k % 6, prob_counts(np.eye(6)[k % 6] * 0.9 + 0.01), 1000 * k) for k in range(3)]
    data = b"\x00" + b"".join(encode_frame(frame_from_values(r, i, 20 * i, [1 / 2048] * 3 + [0.001] * 3))
                              for i, r in enumerate(rows[:4]))
    data += encode_prediction_frame(preds[0]) + b"\x07\x01\x02\x00"  # a garbage frame in between
    data += b"".join(encode_frame(frame_from_values(r, 4 + i, 20 * (4 + i), [1 / 2048] * 3 + [0.001] * 3))
                     for i, r in enumerate(rows[4:]))
    data += encode_prediction_frame(preds[1]) + encode_prediction_frame(preds[2])
    port = SerialPort(path, 115200)
    reader = ReaderThread(port, protocol="binary", expected_channels=6, start_command=b"")
    got_preds: list[DevicePrediction] = []
    samples = 0
    try:
        reader.start()
        os.write(master, data)
        deadline_items = 0
        while (len(got_preds) < 3 or samples < 8) and deadline_items < 2000:
            item = reader.get(timeout=0.05)
            deadline_items += 1
            if isinstance(item, DevicePrediction):
                got_preds.append(item)
            elif isinstance(item, DecodedBatch):
                samples += len(item.values)
    finally:
        reader.stop()
        os.close(master)
        os.close(slave)
    assert samples == 8
    assert [(p.window, p.label, p.counts, p.t_ms) for p in got_preds] == [
        (p.window, p.label, p.counts, p.t_ms) for p in preds]
    assert all(p.received_ns > 0 for p in got_preds)
    stats = reader.stats()
    assert stats.predictions == 3 and stats.bad_frames == 1 and stats.samples == 8


def test_text_lines_carry_samples_and_predictions() -> None:
    dec = TextDecoder(6, skip_first_line=False)
    rows = np.round(np.random.default_rng(4).normal(0, 0.5, (5, 6)), 4)
    lines = [encode_text_line(r) for r in rows]
    pred = DevicePrediction(3, 1, (10, 200, 10, 10, 10, 16), None)
    out = dec.feed(b"".join(lines[:3]) + encode_prediction_line(pred) + b"".join(lines[3:]))
    assert out is not None and len(out.values) == 5
    assert dec.take_predictions() == [pred] and dec.bad_lines == 0 and dec.dropped == 0
