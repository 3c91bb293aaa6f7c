"""Generate the golden wire-protocol vectors in this folder from the Python reference codec.

Usage (from the repository root):
    PYTHONPATH=toolkit python firmware_bridge/vectors/make_vectors.py          # rewrite the JSON files
    PYTHONPATH=toolkit python firmware_bridge/vectors/make_vectors.py --check  # exit 1 if they differ

The committed JSON files are the contract: tests compare the host codec, the MicroPython module and the
C header against them, so a change that alters bytes on the wire fails until the vectors are regenerated
(deliberately) and reviewed. Inputs are float32-representable and kept clear of rounding ties, so that
float32 firmware arithmetic and float64 host arithmetic must agree exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
try:
    from hartool.core.errors import WireError
    from hartool.wire import binary, frames, prediction, text
    from hartool.wire.batch import DevicePrediction
except ImportError:  # run straight from a checkout without PYTHONPATH
    sys.path.insert(0, str(HERE.parents[1] / "toolkit"))
    from hartool.core.errors import WireError
    from hartool.wire import binary, frames, prediction, text
    from hartool.wire.batch import DevicePrediction

ACC = float(np.float32(frames.ACC_SCALE_G))
GYR = float(np.float32(frames.GYRO_SCALE_RAD_S))
IMU_SCALES = [ACC, ACC, ACC, GYR, GYR, GYR]
TIE_MARGIN = 1e-3  # min distance of value/scale (and of scaled text digits) from a .5 rounding tie


def f32(x: float) -> float:
    return float(np.float32(x))


def f32_list(values) -> list:
    return [f32(v) for v in values]


# ---------------------------------------------------------------------------------------------------------
# Tie checks: the vectors must mean the same thing in float32 (MCU) and float64 (host) arithmetic.


def _check_quantize(value: float, scale: float) -> None:
    x64 = value / scale
    x32 = float(np.float32(value) / np.float32(scale))
    for x in (x64, x32):
        if abs(x) < 32767 and abs(abs(x) % 1.0 - 0.5) < TIE_MARGIN:
            raise SystemExit(
                f"vector value {value!r} / scale {scale!r} = {x!r} is too close to a rounding tie"
            )


def _check_text(value: float, decimals: int) -> None:
    a32 = np.float32(abs(value))
    frac32 = float((a32 - np.float32(int(a32))) * np.float32(10**decimals))
    frac64 = (abs(value) - int(abs(value))) * 10**decimals
    for fr in (frac32, frac64):
        if abs(fr % 1.0 - 0.5) < TIE_MARGIN:
            raise SystemExit(
                f"text vector value {value!r} is too close to a rounding tie at {decimals} decimals"
            )


# ---------------------------------------------------------------------------------------------------------
# Vector sets


def primitives() -> dict:
    crc_inputs = [b"", b"123456789", b"\x00", b"\xff\xff", bytes(range(256))]
    cobs_inputs = [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x11\x22\x00\x33",
        b"\x11\x22\x33\x44",
        b"\x11\x00\x00\x00",
        bytes(range(1, 254)),  # 253 non-zero bytes: one block
        bytes(range(1, 255)),  # 254 non-zero bytes: exactly one full 0xFF block
        bytes(range(1, 255)) + b"\x00",  # full block followed by a zero
        bytes(range(0, 255)),  # leading zero then 254 non-zero
        bytes(range(1, 256)),  # 255 non-zero bytes: a full block and one more
        bytes([1 + (i % 255) for i in range(508)]),  # two full blocks
    ]
    return {
        "description": "CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0) and COBS "
        "(no delimiter) of raw byte strings.",
        "crc16": [{"data_hex": d.hex(), "crc": frames.crc16_ccitt(d)} for d in crc_inputs],
        "cobs": [{"data_hex": d.hex(), "encoded_hex": frames.cobs_encode(d).hex()} for d in cobs_inputs],
    }


def _text_case(name: str, values, t_ms=None, decimals: int = 4) -> dict:
    values = f32_list(values)
    for v in values:
        _check_text(v, decimals)
    line = text.encode_text_line(values, t_ms=t_ms, decimals=decimals)
    return {
        "name": name,
        "values": values,
        "t_ms": t_ms,
        "decimals": decimals,
        "line": line.decode(),
        "line_hex": line.hex(),
    }


def text_lines() -> dict:
    cases = [
        _text_case("imu6_at_rest", [0.0123, -0.9871, 0.1042, 0.0021, -0.0143, 0.0007]),
        _text_case("imu6_with_timestamp", [0.0123, -0.9871, 0.1042, 0.0021, -0.0143, 0.0007], t_ms=123456),
        _text_case("acc3_only", [1.5, -2.25, 9.80665]),
        _text_case("rounding_up_and_down", [0.12346, 0.12344, 0.99996, -0.99996, 2.00004]),
        _text_case("negative_zero_and_tiny_negative", [-0.0, -0.00001, 0.00001, 0.0]),
        _text_case("large_magnitudes", [15.9995117, -16.0, 34.906586, -34.906586, 123.4567, -1000.25]),
        _text_case("timestamp_u32_max", [1.0, 2.0, 3.0], t_ms=4294967295),
        _text_case("timestamp_zero_two_decimals", [0.126, -0.374, 3.14159], t_ms=0, decimals=2),
    ]
    return {
        "description": "Text sample lines: optional integer timestamp (ms) then values as %.{decimals}f, "
        "comma separated, CRLF. Values are float32; line_hex is the exact output.",
        "cases": cases,
    }


def _frame_case(name: str, seq: int, t_ms: int, scales, values, has_timestamp: bool = True) -> dict:
    scales = f32_list(scales)
    values = [f32_list(row) for row in values]
    for row in values:
        for v, s in zip(row, scales, strict=True):
            _check_quantize(v, s)
    frame = frames.frame_from_values(np.asarray(values), seq, t_ms, scales, has_timestamp=has_timestamp)
    wire = frames.encode_frame(frame)
    return {
        "name": name,
        "seq": seq,
        "t_ms": t_ms,
        "has_timestamp": has_timestamp,
        "scales": scales,
        "values": values,
        "counts": frame.counts.tolist(),
        "payload_hex": frames.cobs_decode(wire[:-1]).hex(),
        "frame_hex": wire.hex(),
    }


def _imu_rows(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    acc = rng.normal(0.0, 0.3, (n, 3)) + np.array([0.0, 0.0, 1.0])
    gyr = rng.normal(0.0, 0.5, (n, 3))
    return np.round(np.hstack([acc, gyr]), 5).tolist()


def binary_frames() -> dict:
    full = 0x1111  # count whose bytes are 0x11 0x11: a zero-free sample run longer than one COBS block
    cases = [
        _frame_case(
            "single_sample_imu6", 0, 0, IMU_SCALES, [[0.0123, -0.9871, 0.1042, 0.0021, -0.0143, 0.0007]]
        ),
        _frame_case("multi_sample_imu6", 1234, 987654, IMU_SCALES, _imu_rows(5, 1)),
        _frame_case("seq_65535_before_wrap", 65535, 4294967290, IMU_SCALES, _imu_rows(1, 2)),
        _frame_case("seq_0_after_wrap", 0, 14, IMU_SCALES, _imu_rows(1, 3)),
        _frame_case("multi_sample_spanning_wrap", 65534, 1000, IMU_SCALES, _imu_rows(4, 4)),
        _frame_case(
            "saturation_at_and_over_int16_limits",
            7,
            20,
            IMU_SCALES,
            [
                [16.0, -16.0, 32767 / 2048, 34.906586, -34.906586, 0.0],  # 16 g -> 32768 clamps to 32767
                [1e6, -1e6, -32768 / 2048, 1e9, -1e9, 32766.6 * GYR],
            ],
        ),
        _frame_case("all_zero_payload_bytes", 0, 0, IMU_SCALES, [[0.0] * 6, [0.0] * 6]),
        _frame_case("no_timestamp_flag", 42, 0, IMU_SCALES, _imu_rows(2, 5), has_timestamp=False),
        _frame_case("acc3_custom_scale_m_s2", 300, 5000, [0.01, 0.01, 0.01], [[0.12, -9.81, 3.33]]),
        _frame_case("long_zero_free_run_cobs_0xff_block", 0x0101, 0x01010101, [1.0] * 4, [[full] * 4] * 40),
    ]
    return {
        "description": "Binary frames: values (float32) quantised with scales -> counts -> payload -> "
        "COBS(payload)+00. counts = round-half-away(value/scale) saturated to int16.",
        "cases": cases,
    }


def _run_binary_decoder(stream: bytes) -> dict:
    dec = binary.BinaryDecoder()
    values, times = [], []
    t_known = True
    for i in range(len(stream)):  # byte at a time: the hardest way to feed it
        batch = dec.feed(stream[i : i + 1])
        if batch is not None:
            values.extend(batch.values.tolist())
            if batch.t_ms is None:
                t_known = False
            else:
                times.extend(batch.t_ms.tolist())
    return {
        "frames": dec.frames,
        "bad_frames": dec.bad_frames,
        "samples": dec.samples,
        "dropped": dec.dropped,
        "seq_gaps": dec.seq_gaps,
        "seq_resets": dec.seq_resets,
        "discarded_bytes": dec.discarded_bytes,
        "values": values,
        "t_ms": times if t_known else None,
    }


def _wire(seq: int, t_ms: int, rows, scales=None, has_timestamp: bool = True) -> bytes:
    scales = IMU_SCALES if scales is None else scales
    return frames.encode_frame(frames.frame_from_values(np.asarray(rows), seq, t_ms, scales, has_timestamp))


def _reframe(wire: bytes, mutate, fix_crc: bool) -> bytes:
    """Decode a good frame, change its payload, optionally recompute the CRC, and re-encode it."""
    payload = bytearray(frames.cobs_decode(wire[:-1]))
    mutate(payload)
    if fix_crc:
        payload[-2:] = frames.crc16_ccitt(bytes(payload[:-2])).to_bytes(2, "little")
    return frames.cobs_encode(bytes(payload)) + b"\x00"


def _binary_specs() -> list:
    """(name, description, byte stream) of every binary decoder case."""
    r = _imu_rows(12, 7)
    good = [_wire(100 + i, 2000 + 20 * i, [r[i]]) for i in range(6)]

    def flip_sample_byte(p: bytearray) -> None:
        p[-3] ^= 0x40

    def set_version_2(p: bytearray) -> None:
        p[0] = 2

    def claim_two_samples(p: bytearray) -> None:
        p[9] = 2

    specs = []

    def case(name: str, description: str, stream: bytes) -> None:
        specs.append((name, description, stream))

    case("clean_sequence", "six consecutive one-sample frames", b"".join(good))
    case(
        "bad_crc_then_recover",
        "frame 101 has a flipped sample bit (CRC fails): one bad frame, one dropped sample",
        good[0] + _reframe(good[1], flip_sample_byte, fix_crc=False) + good[2],
    )
    case(
        "truncated_frame",
        "frame 101 loses its last 5 encoded bytes before the delimiter",
        good[0] + good[1][:-6] + b"\x00" + good[2],
    )
    case(
        "bad_version",
        "frame 101 says version 2 (valid CRC): rejected",
        good[0] + _reframe(good[1], set_version_2, fix_crc=True) + good[2],
    )
    case(
        "bad_length",
        "frame 101 claims 2 samples but carries 1 (valid CRC): rejected",
        good[0] + _reframe(good[1], claim_two_samples, fix_crc=True) + good[2],
    )
    case("cobs_error", "a COBS block that points past the delimiter", good[0] + b"\x05\x11\x22\x00" + good[1])
    case(
        "garbage_between_frames",
        "printable noise terminated by a delimiter counts as one bad frame",
        good[0] + b"hello world\r\n\x00" + good[1],
    )
    case(
        "cut_first_frame",
        "connecting mid-frame: the cut tail before the first delimiter is discarded, not counted as bad",
        good[0][20:] + good[1] + good[2],
    )
    case(
        "keepalive_delimiters",
        "empty frames (repeated 00) are ignored",
        b"\x00\x00" + good[0] + b"\x00" + good[1],
    )
    case("seq_gap", "frames 100, 101, 105: one gap event of 3 samples", good[0] + good[1] + good[5])
    case(
        "seq_wraparound",
        "65534 (4 samples) then 2 and 65535..: no gap across 65535 -> 0",
        _wire(65534, 0, r[0:4]) + _wire(2, 80, r[4:6]),
    )
    case(
        "seq_reset",
        "device restart: 500, 501 then 0 is a reset, not 65035 lost samples",
        _wire(500, 9000, [r[0]]) + _wire(501, 9020, [r[1]]) + _wire(0, 5, [r[2]]),
    )
    case(
        "multi_sample_timestamps",
        "period estimated from consecutive frames fills per-sample times",
        _wire(10, 1000, r[0:1]) + _wire(11, 1020, r[1:4]) + _wire(14, 1080, r[4:6]),
    )
    case(
        "t_ms_wraparound",
        "u32 millisecond counter wraps: times keep increasing",
        _wire(1, 4294967280, [r[0]]) + _wire(2, 4, [r[1]]),
    )
    case(
        "no_timestamp",
        "frames without the timestamp flag give t_ms = null",
        _wire(1, 0, [r[0]], has_timestamp=False) + _wire(2, 0, [r[1]], has_timestamp=False),
    )
    return specs


def binary_streams() -> dict:
    cases = [{"name": name, "description": description, "stream_hex": stream.hex(),
              "expected": _run_binary_decoder(stream)} for name, description, stream in _binary_specs()]
    return {
        "description": "Byte streams fed to the host BinaryDecoder (one byte at a time) and the expected "
        "counters and decoded samples (values float32, t_ms float64 device milliseconds, unwrapped).",
        "cases": cases,
    }


def _run_text_decoder(stream: bytes, expected_channels, skip_first_line: bool) -> dict:
    dec = text.TextDecoder(expected_channels, skip_first_line=skip_first_line)
    values, times = [], []
    error = None
    try:
        for i in range(0, len(stream), 7):  # odd chunk size: lines arrive split
            batch = dec.feed(stream[i : i + 7])
            if batch is not None:
                values.extend(batch.values.tolist())
                if batch.t_ms is not None:
                    times.extend(batch.t_ms.tolist())
    except WireError as exc:
        error = str(exc)
    return {
        "error": error,
        "channels": dec.channels,
        "has_timestamp": dec.has_timestamp,
        "lines": dec.lines,
        "bad_lines": dec.bad_lines,
        "header_lines": dec.header_lines,
        "samples": dec.samples,
        "values": values,
        "t_ms": times if dec.has_timestamp else None,
    }


def _text_specs() -> list:
    """(name, description, expected channels, skip the first line, byte stream) of every text decoder case."""
    lines6 = [text.encode_text_line(f32_list(row)) for row in _imu_rows(5, 11)]
    lines6ts = [
        text.encode_text_line(f32_list(row), t_ms=1000 + 20 * i) for i, row in enumerate(_imu_rows(5, 12))
    ]
    specs = [
        (
            "csv_with_header_and_cut_first_line",
            "cut first line, a header, then CSV",
            6,
            True,
            b"0.12,-0.9" + b"\r\n" + b"aX,aY,aZ,gX,gY,gZ\r\n" + b"".join(lines6),
        ),
        (
            "timestamp_column_detected",
            "expected 6 channels, 7 columns: first column is the timestamp",
            6,
            True,
            b"\r\n" + b"".join(lines6ts),
        ),
        (
            "timestamp_autodetect_without_expected",
            "7 columns, integral increasing first column",
            None,
            True,
            b"\n" + b"".join(lines6ts),
        ),
        (
            "edge_impulse_tabs_and_spaces",
            "tab and space separated, LF endings, runs of separators",
            3,
            False,
            b"0.5\t-0.25\t1.0\n0.5  -0.25   1.0\n 0.5 , -0.25 ,1.0 \n1\t2 3\n",
        ),
        (
            "nan_inf_and_wrong_count_after_detection",
            "NaN/inf rows and a 5-value row are bad lines",
            3,
            False,
            b"1,2,3\n4,5,6\n7,8,9\nnan,1,2\n1,inf,2\n1,2,3,4,5\n10,11,12\n",
        ),
        (
            "binary_noise_and_overlong_line",
            "control bytes and a 300-byte line are bad lines",
            3,
            False,
            b"1,2,3\n1,2,3\n1,2,3\n\x01\x02\xff\n" + b"9" * 300 + b"\n4,5,6\n",
        ),
        (
            "banner_lines",
            "firmware banners are counted as header lines",
            3,
            False,
            b"MPU6050 ready at 0x68\n# hartool text mode\n1,2,3\n1,2,3\n1,2,3\n",
        ),
        (
            "channel_mismatch",
            "device sends 3 values, model expects 6: WireError after detection",
            6,
            False,
            b"1,2,3\n1,2,3\n1,2,3\n1,2,3\n",
        ),
    ]
    return specs


def text_streams() -> dict:
    cases = []
    for name, description, expected, skip_first, stream in _text_specs():
        cases.append(
            {
                "name": name,
                "description": description,
                "expected_channels": expected,
                "skip_first_line": skip_first,
                "stream_hex": stream.hex(),
                "expected": _run_text_decoder(stream, expected, skip_first),
            }
        )
    return {
        "description": "Byte streams fed to the host TextDecoder (7-byte chunks, detect_lines=3) and the "
        "expected counters, samples (float32) and timestamps.",
        "cases": cases,
    }


def _prediction_case(name: str, window: int, label: int, probs, t_ms=None) -> dict:
    probs = f32_list(probs)
    for p in probs:
        if abs((p * 256) % 1.0 - 0.5) < TIE_MARGIN:
            raise SystemExit(f"prediction probability {p!r} is too close to a rounding tie")
    pred = DevicePrediction(window, label, prediction.prob_counts(probs), t_ms)
    wire = prediction.encode_prediction_frame(pred)
    line = prediction.encode_prediction_line(pred)
    return {"name": name, "window": window, "label": label, "probs": probs, "t_ms": t_ms,
            "counts": list(pred.counts), "payload_hex": frames.cobs_decode(wire[:-1]).hex(),
            "frame_hex": wire.hex(), "line": line.decode(), "line_hex": line.hex()}


def _pred_doc(p) -> dict:
    return {"window": p.window, "label": p.label, "counts": list(p.counts), "t_ms": p.t_ms}


def _run_prediction_stream(protocol: str, stream: bytes) -> dict:
    """Decode ``stream`` byte by byte with the host decoder: its samples, predictions and counters."""
    dec = binary.BinaryDecoder(6) if protocol == "binary" else text.TextDecoder(6, skip_first_line=False)
    samples, preds = 0, []
    for i in range(len(stream)):
        batch = dec.feed(stream[i : i + 1])
        samples += 0 if batch is None else len(batch.values)
        preds += [_pred_doc(p) for p in dec.take_predictions()]
    bad = {"bad_frames": dec.bad_frames} if protocol == "binary" else {"bad_lines": dec.bad_lines,
                                                                       "header_lines": dec.header_lines}
    return {"samples": samples, "predictions": preds, "bad_predictions": dec.bad_predictions, **bad}


def _prediction_streams(good: list[bytes], lines: list[bytes]) -> list[dict]:
    rows = _imu_rows(3, 11)
    sample_frames = [_wire(i, 20 * i, [rows[i]]) for i in range(3)]
    sample_lines = [text.encode_text_line(f32_list(r)) for r in rows]

    def bad_label(p: bytearray) -> None:
        p[10] = p[11]  # label == nclass: the CRC is recomputed, so the frame arrives whole but malformed

    cases = [
        ("binary", "samples_and_predictions_interleaved",
         b"\x00" + sample_frames[0] + good[0] + sample_frames[1] + good[1] + sample_frames[2]),
        ("binary", "bad_crc_is_a_bad_frame_then_the_next_decodes",
         b"\x00" + _reframe(good[0], lambda p: p.__setitem__(12, p[12] ^ 0x40), fix_crc=False) + good[1]),
        ("binary", "whole_but_bad_label_is_a_bad_prediction", b"\x00" + _reframe(good[0], bad_label, True) + good[1]),
        ("binary", "truncated_prediction_frame", b"\x00" + good[0][: len(good[0]) // 2] + b"\x00" + good[1]),
        ("text", "prediction_lines_among_samples",
         sample_lines[0] + lines[0] + sample_lines[1] + sample_lines[2] + lines[1]),
        ("text", "malformed_prediction_lines_are_counted",
         b"".join(sample_lines) + b"pred,1,2\r\n" + b"pred,1,-,7,6,1,2,3,4,5,6\r\n"
         + b"pred,1,-,0,2,300,5\r\n" + b"pred,x,-,0,1,255\r\n" + lines[0]),
    ]
    return [{"protocol": proto, "name": name, "stream_hex": data.hex(), "expect": _run_prediction_stream(proto, data)}
            for proto, name, data in cases]


def predictions() -> dict:
    cases = [
        _prediction_case("six_classes_with_timestamp", 0, 3, [0.01, 0.02, 0.05, 0.85, 0.04, 0.03], 123456),
        _prediction_case("int8_softmax_outputs_are_exact", 12, 1, [3 / 256, 250 / 256, 3 / 256]),
        _prediction_case("window_and_t_ms_u32_max_clamped_probs", 4294967295, 0, [1.0, 0.0], 4294967295),
        _prediction_case("out_of_range_probs_clamp", 7, 1, [-0.01, 1.2, 0.3], 5000),
        _prediction_case("zero_bytes_for_cobs", 256, 0, [0.0, 0.0, 0.0, 0.0, 0.0, 1.0], 0),
        _prediction_case("one_class", 1, 0, [1.0]),
        _prediction_case("twelve_classes", 70000, 11, [i / 100 + 0.001 for i in range(12)], 99),
    ]
    good = [bytes.fromhex(c["frame_hex"]) for c in cases[:2]]
    lines = [bytes.fromhex(c["line_hex"]) for c in cases[:2]]
    return {
        "description": "Prediction messages of a board that classifies by itself: window (u32), label, "
        "probabilities (float32) -> u8 counts round(p*256) clamped -> payload -> COBS(payload)+00, and the text "
        "line. streams: bytes -> what the host decoder (6 channels) makes of them.",
        "cases": cases,
        "streams": _prediction_streams(good, lines),
    }


FILES = {
    "primitives.json": primitives,
    "text_lines.json": text_lines,
    "binary_frames.json": binary_frames,
    "binary_streams.json": binary_streams,
    "text_streams.json": text_streams,
    "predictions.json": predictions,
}


def render(builder) -> str:
    doc = {"format": "hartool-wire-vectors", "protocol_version": frames.BINARY_VERSION, **builder()}
    text = json.dumps(doc, indent=1, allow_nan=False)
    if not all(math.isfinite(x) for x in _floats(doc)):
        raise SystemExit("non-finite number in vectors")
    return text + "\n"


def _floats(obj):
    if isinstance(obj, float):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _floats(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _floats(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed files, write nothing"
    )
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: next to this script)")
    args = parser.parse_args(argv)
    stale = []
    for name, builder in FILES.items():
        text = render(builder)
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        sys.stderr.write("vectors differ from the reference codec: " + ", ".join(stale) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
