"""Unit and property tests of the host wire codecs (hartool.wire.frames, .binary, .text, .autodetect)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hartool.core.errors import WireError
from hartool.wire.autodetect import sniff_protocol
from hartool.wire.batch import DecodedBatch
from hartool.wire.binary import BinaryDecoder
from hartool.wire.frames import (
    ACC_SCALE_G,
    GYRO_SCALE_RAD_S,
    MAX_ENCODED_FRAME,
    Frame,
    cobs_decode,
    cobs_encode,
    crc16_ccitt,
    decode_frame,
    encode_frame,
    frame_from_values,
    quantize,
)
from hartool.wire.text import TextDecoder, encode_text_line

IMU = [ACC_SCALE_G] * 3 + [GYRO_SCALE_RAD_S] * 3


def _frame(seq: int, rows, t_ms: int = 0, scales=IMU, has_timestamp: bool = True) -> bytes:
    return encode_frame(
        frame_from_values(np.asarray(rows, dtype=np.float64), seq, t_ms, scales, has_timestamp)
    )


def _feed_all(dec, data: bytes, step: int | None = None) -> tuple[np.ndarray, list, int]:
    """Feed in chunks of ``step`` (all at once if None); return stacked values, per-batch t_ms, dropped."""
    step = step or max(1, len(data))
    values, times, dropped = [], [], 0
    for i in range(0, len(data), step):
        batch = dec.feed(data[i : i + step])
        if batch is not None:
            assert isinstance(batch, DecodedBatch)
            assert batch.values.dtype == np.float32
            values.append(batch.values)
            times.append(batch.t_ms)
            dropped += batch.dropped
    out = np.concatenate(values) if values else np.zeros((0, 0), np.float32)
    return out, times, dropped


# ---------------------------------------------------------------------------------------------------------
# Primitives


def test_crc16_check_value_and_continuation():
    assert crc16_ccitt(b"123456789") == 0x29B1  # the catalogue check value of CRC-16/CCITT-FALSE
    assert crc16_ccitt(b"") == 0xFFFF
    assert crc16_ccitt(b"6789", crc16_ccitt(b"12345")) == 0x29B1


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
        (bytes(range(1, 255)) + b"\x00", b"\xff" + bytes(range(1, 255)) + b"\x01\x01"),
    ],
)
def test_cobs_known_encodings(raw, encoded):
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


def test_cobs_decode_accepts_trailing_empty_block_after_full_block():
    # Some encoders emit 0x01 after a final 0xFF block; it decodes to the same bytes.
    assert cobs_decode(b"\xff" + bytes(range(1, 255)) + b"\x01") == bytes(range(1, 255))


@pytest.mark.parametrize("bad", [b"", b"\x00", b"\x05\x11\x22", b"\x02\x11\x00", b"\x03\x11"])
def test_cobs_decode_rejects_malformed(bad):
    with pytest.raises(WireError):
        cobs_decode(bad)


@given(st.binary(max_size=1200))
def test_cobs_roundtrip_and_no_zero(data):
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(enc) == data


def test_quantize_rounds_half_away_from_zero_and_saturates():
    counts = quantize([0.5, 1.5, -0.5, -1.5, 2.4999, 40000.0, -40000.0, np.nan, np.inf, -np.inf], [1.0] * 10)
    assert counts.dtype == np.int16
    assert counts.tolist() == [1, 2, -1, -2, 2, 32767, -32768, 0, 32767, -32768]


# ---------------------------------------------------------------------------------------------------------
# Frames


def test_frame_payload_layout_byte_by_byte():
    frame = Frame(
        seq=0x1234, t_ms=0x0A0B0C0D, scales=np.array([0.5], np.float32), counts=np.array([[-2]], np.int16)
    )
    payload = cobs_decode(encode_frame(frame)[:-1])
    body = bytes.fromhex("01 01 3412 0d0c0b0a 01 01 0000003f feff")
    assert payload[:-2] == body
    assert payload[-2:] == crc16_ccitt(body).to_bytes(2, "little")
    assert frame.values.tolist() == [[-1.0]]


def test_frame_roundtrip_and_flags():
    frame = frame_from_values([[1.0, -2.0, 0.25]], 65535, 4294967295, [1 / 64] * 3, has_timestamp=False)
    back = decode_frame(encode_frame(frame))
    assert (back.seq, back.t_ms, back.has_timestamp, back.nch, back.nsamp) == (65535, 4294967295, False, 3, 1)
    assert back.counts.tolist() == [[64, -128, 16]]
    assert back.values.dtype == np.float32


def test_frame_from_values_wraps_seq_and_time_and_saturates():
    frame = frame_from_values([[17.0, -17.0, 0.0]], 65536 + 5, 2**32 + 7, [ACC_SCALE_G] * 3)
    assert (frame.seq, frame.t_ms) == (5, 7)
    assert frame.counts.tolist() == [[32767, -32768, 0]]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"counts": np.zeros((1, 2), np.int16), "scales": np.ones(3)},  # shape mismatch
        {"counts": np.zeros((256, 1), np.int16), "scales": np.ones(1)},  # too many samples
        {"counts": np.array([[40000]]), "scales": np.ones(1)},  # outside int16
        {"counts": np.zeros((1, 1), np.int16), "scales": np.ones(1), "seq": 70000},
    ],
)
def test_frame_validation(kwargs):
    args = {"seq": 0, "t_ms": 0, **kwargs}
    with pytest.raises(ValueError):
        Frame(**args)


@given(
    st.integers(1, 12),
    st.integers(1, 40),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.randoms(use_true_random=False),
)
@settings(max_examples=60, deadline=None)
def test_encode_decode_property(nch, nsamp, seq, t_ms, rnd):
    counts = np.array([[rnd.randint(-32768, 32767) for _ in range(nch)] for _ in range(nsamp)], np.int16)
    scales = np.array(
        [rnd.choice([ACC_SCALE_G, GYRO_SCALE_RAD_S, 1.0, 0.01]) for _ in range(nch)], np.float32
    )
    wire = encode_frame(Frame(seq, t_ms, scales, counts))
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    back = decode_frame(wire)
    assert np.array_equal(back.counts, counts) and np.array_equal(back.scales, scales)
    dec = BinaryDecoder()
    batch = dec.feed(wire)
    assert batch is not None and np.array_equal(batch.values, counts.astype(np.float32) * scales)


def test_decode_frame_reports_reason():
    good = cobs_decode(_frame(1, [[0.1] * 6])[:-1])
    broken = bytearray(good)
    broken[-1] ^= 1
    with pytest.raises(WireError, match="CRC"):
        decode_frame(cobs_encode(bytes(broken)))
    with pytest.raises(WireError, match="too short"):
        decode_frame(cobs_encode(good[:10]))


# ---------------------------------------------------------------------------------------------------------
# BinaryDecoder


def test_binary_decoder_split_anywhere_gives_same_result():
    rows = np.round(np.random.default_rng(0).normal(0, 1, (30, 6)), 3)
    stream = b"".join(_frame(i * 3, rows[i * 3 : i * 3 + 3], t_ms=100 + 60 * i) for i in range(10))
    whole, _, _ = _feed_all(BinaryDecoder(), stream)
    for step in (1, 2, 7, 64):
        dec = BinaryDecoder()
        parts, _, dropped = _feed_all(dec, stream, step)
        assert np.array_equal(parts, whole)
        assert (dec.frames, dec.samples, dec.bad_frames, dropped) == (10, 30, 0, 0)
    expected = frame_from_values(rows, 0, 0, IMU).values
    assert np.array_equal(whole, expected)


@given(
    st.lists(st.one_of(st.none(), st.binary(min_size=1, max_size=80)), min_size=1, max_size=25),
    st.integers(1, 9),
)
@settings(max_examples=150, deadline=None)
def test_binary_decoder_recovers_every_frame_around_garbage(items, step):
    """Garbage (each piece ending in a delimiter) between valid frames never costs a valid frame."""
    stream, expected, seq = b"\x00", [], 0
    for item in items:
        if item is None:
            row = [[0.01 * seq, -0.5, 1.0, 0.1, -0.1, 0.0]]
            stream += _frame(seq, row, t_ms=20 * seq)
            expected.append(frame_from_values(row, 0, 0, IMU).values[0])
            seq += 1
        else:
            stream += item + b"\x00"
    dec = BinaryDecoder()
    values, _, dropped = _feed_all(dec, stream, step)
    assert dec.frames == len(expected) and dropped == 0 and dec.dropped == 0
    assert np.array_equal(values.reshape(-1, 6), np.asarray(expected, np.float32).reshape(-1, 6))
    garbage_pieces = sum(len([p for p in item.split(b"\x00") if p]) for item in items if item is not None)
    assert dec.bad_frames <= garbage_pieces


def test_binary_decoder_returns_none_without_complete_frame():
    dec = BinaryDecoder()
    wire = _frame(0, [[0.0] * 6])
    assert dec.feed(wire[:-1]) is None
    assert dec.feed(b"") is None
    batch = dec.feed(b"\x00")
    assert batch is not None and batch.values.shape == (1, 6)


def test_binary_decoder_counts_gaps_and_reports_them_on_next_batch():
    dec = BinaryDecoder()
    dec.feed(_frame(10, [[0.0] * 6]))
    bad = bytearray(_frame(11, [[0.0] * 6]))
    bad[5] ^= 0xFF
    assert dec.feed(bytes(bad)) is None  # only a bad frame: nothing to return yet
    batch = dec.feed(_frame(12, [[0.0] * 6]) + _frame(20, [[0.0] * 6]))
    assert batch is not None and batch.dropped == 1 + 7
    assert (dec.bad_frames, dec.seq_gaps, dec.dropped, dec.frames) == (1, 2, 8, 3)
    # Where samples are missing: before the first sample (seq 11) and before the second (seq 13..19).
    assert batch.breaks == (0, 1) and batch.time_unit == "ms"
    assert dec.feed(_frame(21, [[0.0] * 6])).breaks == ()


def test_binary_decoder_channel_checks():
    with pytest.raises(WireError, match="device sends 3 channels per sample, model expects 6"):
        BinaryDecoder(expected_channels=6).feed(_frame(0, [[0.0] * 3], scales=[1.0] * 3))
    dec = BinaryDecoder()
    dec.feed(_frame(0, [[0.0] * 6]))
    assert dec.feed(_frame(1, [[0.0] * 3], scales=[1.0] * 3)) is None  # layout changed mid-stream
    assert (dec.channels, dec.bad_frames) == (6, 1)


def test_binary_decoder_memory_is_bounded_without_delimiters():
    dec = BinaryDecoder(max_frame_bytes=1000)
    dec.feed(_frame(0, [[0.0] * 6]))
    for _ in range(50):
        assert dec.feed(b"\x55" * 100) is None
        assert len(dec._buf) <= 1100
    assert dec.bad_frames == 1  # the whole over-long run counts once
    batch = dec.feed(b"\x00" + _frame(1, [[0.0] * 6]))
    assert batch is not None and dec.bad_frames == 1 and dec.frames == 2
    assert MAX_ENCODED_FRAME > 131000  # default bound admits the largest legal frame


def test_binary_decoder_mixed_scales_in_one_feed():
    stream = _frame(0, [[1.0] * 3], scales=[0.5] * 3) + _frame(1, [[1.0] * 3], scales=[0.25] * 3)
    values, _, _ = _feed_all(BinaryDecoder(), stream)
    assert values.tolist() == [[1.0] * 3, [1.0] * 3]


def test_binary_decoder_timestamps_for_multi_sample_frames():
    dec = BinaryDecoder()
    first = dec.feed(_frame(0, [[0.0] * 6] * 5, t_ms=1000))
    assert first is not None and first.t_ms is None  # period not known yet
    batch = dec.feed(_frame(5, [[0.0] * 6] * 5, t_ms=1100))
    assert batch is not None and batch.t_ms.tolist() == [1100.0, 1120.0, 1140.0, 1160.0, 1180.0]


# ---------------------------------------------------------------------------------------------------------
# Text


def test_encode_text_line_format():
    assert encode_text_line([1.0, -0.00001, 2.5]) == b"1.0000,-0.0000,2.5000\r\n"
    assert encode_text_line([0.5], t_ms=42, decimals=2) == b"42,0.50\r\n"


def _text(lines: list[str]) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


def test_text_decoder_detects_and_skips_cut_first_line():
    dec = TextDecoder(3)
    batch = dec.feed(_text(["2,3", "aX,aY,aZ", "1,2,3", "4,5,6", "7,8,9"]))
    assert batch is not None and batch.values.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert batch.t_ms is None
    assert (dec.channels, dec.has_timestamp, dec.lines, dec.header_lines, dec.bad_lines, dec.samples) == (
        3,
        False,
        5,
        1,
        0,
        3,
    )


def test_text_decoder_nothing_before_detection():
    dec = TextDecoder(3)
    assert dec.feed(b"x\n1,2,3\n1,2,3\n") is None
    assert dec.channels is None
    batch = dec.feed(b"1,2,3\n")
    assert batch is not None and len(batch.values) == 3


def test_text_decoder_timestamp_column():
    dec = TextDecoder(3, skip_first_line=False)
    batch = dec.feed(b"100,1,2,3\n120,1,2,3\n140\t1 2 ,3\n")
    assert batch is not None and batch.t_ms.tolist() == [100.0, 120.0, 140.0]
    assert batch.values.shape == (3, 3) and dec.has_timestamp


def test_text_decoder_mismatch_message():
    dec = TextDecoder(6, skip_first_line=False)
    with pytest.raises(WireError, match="^device sends 3 values per line, model expects 6$"):
        dec.feed(b"1,2,3\n1,2,3\n1,2,3\n")


def test_text_decoder_autodetect_without_expected():
    plain = TextDecoder(skip_first_line=False)
    plain.feed(b"0.1,0.2,0.3,0.4\n" * 3)
    assert (plain.channels, plain.has_timestamp) == (4, False)  # not increasing: data, not time
    timed = TextDecoder(skip_first_line=False)
    timed.feed(b"10,0.1,0.2,0.3\n30,0.1,0.2,0.3\n50,0.1,0.2,0.3\n")
    assert (timed.channels, timed.has_timestamp) == (3, True)


def test_text_decoder_inconsistent_run_restarts_detection():
    dec = TextDecoder(skip_first_line=False)
    dec.feed(b"1,2\n1,2,3\n1,2,3\n1,2,3\n")
    assert (dec.channels, dec.bad_lines, dec.samples) == (3, 1, 3)


def test_text_decoder_bad_lines_are_dropped_and_reported():
    dec = TextDecoder(3, skip_first_line=False)
    dec.feed(b"1,2,3\n" * 3)
    batch = dec.feed(b"nan,1,2\n1,2\n\x80\x81\n4,5,6\n")
    assert batch is not None and batch.values.tolist() == [[4, 5, 6]] and batch.dropped == 3
    assert dec.bad_lines == 3 and dec.samples == 4


def test_text_decoder_overlong_line_bounded():
    dec = TextDecoder(3, skip_first_line=False, max_line_bytes=64)
    dec.feed(b"1,2,3\n" * 3)
    for _ in range(20):
        assert dec.feed(b"1" * 50) is None
        assert len(dec._buf) <= 64 + 50
    batch = dec.feed(b"1111\n7,8,9\n")
    assert batch is not None and batch.values.tolist() == [[7, 8, 9]]
    assert (dec.bad_lines, dec.lines) == (1, 5)


def test_text_decoder_blank_lines_ignored_and_crlf_or_lf():
    dec = TextDecoder(2, skip_first_line=False)
    batch = dec.feed(b"1 2\r\n\r\n\n   \n3,4\n5\t6\r\n")
    assert batch is not None and batch.values.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert dec.lines == 3 and dec.bad_lines == 0


_token = st.one_of(
    st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: f"{v:.4f}"),
    st.integers(-500, 500).map(str),
    st.sampled_from(["nan", "inf", "-inf", "x", "1e", "1_0", "0x1A", "--1", "", "1.2.3", "\x01"]),
)
_line = st.lists(_token, min_size=0, max_size=5).flatmap(
    lambda toks: st.sampled_from([",", "\t", " ", ", ", "  "]).map(lambda sep: sep.join(toks))
)


@given(st.lists(_line, min_size=8, max_size=40))
@settings(max_examples=150, deadline=None)
def test_text_fast_path_equals_line_by_line(lines):
    """The vectorised chunk parser must give exactly what the per-line parser gives, garbage included."""
    data = ("1,2,3\n1,2,3\n1,2,3\n" + "\n".join(lines) + "\n").encode("latin-1")
    bulk = TextDecoder(3, skip_first_line=False)
    bulk_values, _, _ = _feed_all(bulk, data)
    single = TextDecoder(3, skip_first_line=False)
    single_values, _, _ = _feed_all(single, data, 1)
    assert np.array_equal(bulk_values, single_values)
    assert (bulk.lines, bulk.bad_lines, bulk.header_lines, bulk.samples, bulk.dropped) == (
        single.lines,
        single.bad_lines,
        single.header_lines,
        single.samples,
        single.dropped,
    )


def test_text_fast_path_used_for_clean_chunks():
    dec = TextDecoder(6, skip_first_line=False)
    dec.feed(encode_text_line([0.0] * 6) * 3)
    lines = b"".join(encode_text_line([i, -i, 0.5, 1, 2, 3]) for i in range(100))
    dec._slow_line = None  # any fallback to the slow path would now fail
    batch = dec.feed(lines)
    assert batch is not None and batch.values.shape == (100, 6) and batch.values[99, 1] == -99


# ---------------------------------------------------------------------------------------------------------
# Sniffing


def test_sniff_protocol():
    text = b"".join(encode_text_line([0.1, -0.2, 0.98]) for _ in range(10))
    binary = b"".join(_frame(i, [[0.01 * i, 0.2, -0.98, 0.5, -0.1, 0.0]], t_ms=20 * i) for i in range(10))
    assert sniff_protocol(text) == "text"
    assert sniff_protocol(text[5:]) == "text"
    assert sniff_protocol(binary) == "binary"
    assert sniff_protocol(binary[30:90]) == "binary"  # one delimiter, no complete frame: statistics
    assert sniff_protocol(binary[7:40]) == "unknown"  # no delimiter at all: too little to tell
    assert sniff_protocol(b"") == "unknown"
    assert sniff_protocol(b"\x00" * 64) == "unknown"
    assert sniff_protocol(b"\xff\xfe" * 20) == "unknown"


# ---------------------------------------------------------------------------------------------------------
# Throughput (the streamer needs >= 20,000 samples/s on a slow core; this machine is much faster)


def _rate(dec, stream: bytes, chunk: int, n: int) -> float:
    best = 0.0
    for _ in range(3):
        d = dec()
        t0 = time.process_time()  # CPU time: not distorted by other jobs on a shared CI machine
        for i in range(0, len(stream), chunk):
            d.feed(stream[i : i + chunk])
        best = max(best, n / max(time.process_time() - t0, 1e-6))
    return best


def test_decode_throughput_floor():
    rows = np.round(np.random.default_rng(1).normal(0, 1, (3000, 6)), 4)
    binary = b"".join(_frame(i, rows[i : i + 1], t_ms=i * 20) for i in range(len(rows)))
    text = b"".join(encode_text_line(r) for r in rows)
    # Worst realistic cases: one-sample frames and small serial reads. The floor guards against regressions
    # to per-byte Python loops (far below it) yet holds on a loaded CI machine; measured numbers are in
    # firmware_bridge/README.md (tools/bench_decode.py).
    assert _rate(BinaryDecoder, binary, 256, len(rows)) > 25_000
    assert _rate(lambda: TextDecoder(6, skip_first_line=False), text, 256, len(rows)) > 25_000


def test_binary_time_continues_across_the_u32_millisecond_wrap():
    """Frames stamped 20 ms apart straddling 2^32 ms: device time keeps rising by 20 ms (core.timebase.Unwrap32)."""
    row = [[0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]
    start = 0xFFFFFFFF - 25
    stamps = [start + 20 * k for k in range(6)]  # the 3rd frame onwards wraps to small values
    dec = BinaryDecoder()
    times = []
    for k, t in enumerate(stamps):  # one frame per feed, as a live port delivers them
        batch = dec.feed(_frame(k, row, t_ms=t))
        if batch is not None:
            times.extend(np.ravel(batch.t_ms).tolist())
    assert [t & 0xFFFFFFFF for t in stamps][2] < 100
    assert len(times) == len(stamps)
    assert np.diff(times).tolist() == [20.0] * (len(stamps) - 1)
