"""The host codec against the committed golden vectors in firmware_bridge/vectors/ (bytes and outcomes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hartool.core.errors import WireError
from hartool.wire.binary import BinaryDecoder
from hartool.wire.frames import (
    cobs_decode,
    cobs_encode,
    crc16_ccitt,
    decode_frame,
    encode_frame,
    frame_from_values,
)
from hartool.wire.text import TextDecoder, encode_text_line

VECTORS = Path(__file__).resolve().parents[2] / "firmware_bridge" / "vectors"


def _load(name: str) -> dict:
    doc = json.loads((VECTORS / name).read_text())
    assert doc["format"] == "hartool-wire-vectors" and doc["protocol_version"] == 1
    return doc


def _ids(cases: list) -> list:
    return [c["name"] for c in cases]


PRIMITIVES = _load("primitives.json")
TEXT_LINES = _load("text_lines.json")["cases"]
FRAMES = _load("binary_frames.json")["cases"]
BIN_STREAMS = _load("binary_streams.json")["cases"]
TEXT_STREAMS = _load("text_streams.json")["cases"]


def test_vector_files_cover_the_required_cases():
    names = set(_ids(FRAMES)) | set(_ids(BIN_STREAMS))
    for needed in (
        "seq_65535_before_wrap",
        "seq_0_after_wrap",
        "saturation_at_and_over_int16_limits",
        "multi_sample_imu6",
        "all_zero_payload_bytes",
        "bad_crc_then_recover",
        "truncated_frame",
    ):
        assert needed in names
    assert any(0 in bytes.fromhex(c["payload_hex"]) for c in FRAMES)
    assert any(0xFF in _cobs_codes(bytes.fromhex(c["frame_hex"])[:-1]) for c in FRAMES)  # a full COBS block


def _cobs_codes(enc: bytes) -> list:
    codes, i = [], 0
    while i < len(enc):
        codes.append(enc[i])
        i += enc[i]
    return codes


@pytest.mark.parametrize("case", PRIMITIVES["crc16"], ids=lambda c: c["data_hex"][:16] or "empty")
def test_crc_vectors(case):
    assert crc16_ccitt(bytes.fromhex(case["data_hex"])) == case["crc"]


@pytest.mark.parametrize("case", PRIMITIVES["cobs"], ids=lambda c: c["data_hex"][:16] or "empty")
def test_cobs_vectors(case):
    raw, enc = bytes.fromhex(case["data_hex"]), bytes.fromhex(case["encoded_hex"])
    assert cobs_encode(raw) == enc
    assert cobs_decode(enc) == raw


@pytest.mark.parametrize("case", TEXT_LINES, ids=_ids(TEXT_LINES))
def test_text_line_vectors(case):
    line = encode_text_line(case["values"], t_ms=case["t_ms"], decimals=case["decimals"])
    assert line.hex() == case["line_hex"]
    assert line.decode() == case["line"]


@pytest.mark.parametrize("case", FRAMES, ids=_ids(FRAMES))
def test_binary_frame_vectors(case):
    frame = frame_from_values(
        np.asarray(case["values"]),
        case["seq"],
        case["t_ms"],
        case["scales"],
        has_timestamp=case["has_timestamp"],
    )
    assert frame.counts.tolist() == case["counts"]
    wire = encode_frame(frame)
    assert wire.hex() == case["frame_hex"]
    assert cobs_decode(wire[:-1]).hex() == case["payload_hex"]
    back = decode_frame(bytes.fromhex(case["frame_hex"]))
    assert (back.seq, back.t_ms, back.has_timestamp) == (case["seq"], case["t_ms"], case["has_timestamp"])
    assert back.counts.tolist() == case["counts"]
    assert back.scales.tolist() == case["scales"]


def _run_binary(stream: bytes, step: int) -> tuple[BinaryDecoder, list, list | None]:
    dec = BinaryDecoder()
    values: list = []
    times: list | None = []
    for i in range(0, len(stream), step):
        batch = dec.feed(stream[i : i + step])
        if batch is not None:
            values.extend(batch.values.tolist())
            if batch.t_ms is None or times is None:
                times = None
            else:
                times.extend(batch.t_ms.tolist())
    return dec, values, times


@pytest.mark.parametrize("case", BIN_STREAMS, ids=_ids(BIN_STREAMS))
def test_binary_stream_vectors(case):
    stream = bytes.fromhex(case["stream_hex"])
    exp = case["expected"]
    # Byte at a time (as generated), and whole-stream where timestamps can differ only by being known
    # sooner (the multi-sample period), so they are compared for the byte-wise run only.
    for step in (1, len(stream)):
        dec, values, times = _run_binary(stream, step)
        counters = {
            k: getattr(dec, k)
            for k in (
                "frames",
                "bad_frames",
                "samples",
                "dropped",
                "seq_gaps",
                "seq_resets",
                "discarded_bytes",
            )
        }
        assert counters == {k: exp[k] for k in counters}
        assert np.array_equal(
            np.asarray(values, np.float32), np.asarray(exp["values"], np.float32).reshape(-1, 6)
        )
        if step == 1:
            assert times == exp["t_ms"]


@pytest.mark.parametrize("case", TEXT_STREAMS, ids=_ids(TEXT_STREAMS))
def test_text_stream_vectors(case):
    stream = bytes.fromhex(case["stream_hex"])
    exp = case["expected"]
    for step in (1, 7, len(stream)):
        dec = TextDecoder(case["expected_channels"], skip_first_line=case["skip_first_line"])
        values, times, error = [], [], None
        try:
            for i in range(0, len(stream), step):
                batch = dec.feed(stream[i : i + step])
                if batch is not None:
                    values.extend(batch.values.tolist())
                    if batch.t_ms is not None:
                        times.extend(batch.t_ms.tolist())
        except WireError as exc:
            error = str(exc)
        assert error == exp["error"]
        got = {
            k: getattr(dec, k)
            for k in ("channels", "has_timestamp", "lines", "bad_lines", "header_lines", "samples")
        }
        assert got == {k: exp[k] for k in got}
        assert values == exp["values"]
        assert (times if dec.has_timestamp else None) == exp["t_ms"]
