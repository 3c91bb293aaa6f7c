"""What phone apps and boards really send: --columns text, Sensor Logger / HyperIMU / named-field JSON, sniffing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hartool.core.errors import WireError
from hartool.wire.autodetect import AutoDecoder, decoder_counters, make_decoder, sniff_protocol
from hartool.wire.batch import parse_columns
from hartool.wire.jsoncodec import JsonDecoder
from hartool.wire.text import TextDecoder

NAMES = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


# ---------------------------------------------------------------------------------------------------------
# --columns


def test_columns_layout_and_errors() -> None:
    lay = parse_columns("t, -, gyro_x,gyro_y,gyro_z,acc_x,acc_y,acc_z", NAMES)
    assert lay.time_col == 0 and lay.channel_cols == (5, 6, 7, 2, 3, 4) and lay.min_fields == 8
    assert parse_columns(",".join(NAMES), NAMES).time_col is None
    for spec, msg in [("t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_q", "unknown channel 'gyro_q'"),
                      ("t,acc_x,acc_y,acc_z,gyro_x,gyro_y", "misses gyro_z"),
                      ("t,acc_x,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z", "names 'acc_x' twice"),
                      ("t,,acc_x", "empty field name")]:
        with pytest.raises(WireError, match=msg) as info:
            parse_columns(spec, NAMES)
        assert "\n" not in str(info.value)


def test_text_columns_reorder_skip_and_ignore_extra_fields() -> None:
    lay = parse_columns("t,-,gyro_x,gyro_y,gyro_z,acc_x,acc_y,acc_z", NAMES)
    dec = TextDecoder(columns=lay, skip_first_line=False, time_unit="us")
    rows = [[1000 * k, 99, 4 + k, 5, 6, 1, 2, 3 + k, 7, 8] for k in range(6)]  # two extra fields at the end
    batch = dec.feed(b"".join((",".join(map(str, r)) + "\r\n").encode() for r in rows))
    assert batch is not None and batch.time_unit == "us"
    np.testing.assert_array_equal(batch.t, [1000 * k for k in range(6)])
    np.testing.assert_array_equal(batch.values[:, [0, 2, 3]], [[1, 3 + k, 4 + k] for k in range(6)])
    # A line with fewer fields than --columns names is a bad line, not a sample.
    assert dec.feed(b"6000,1,2,3\n") is None and dec.bad_lines == 1


def test_text_columns_too_few_fields_is_one_line_error() -> None:
    dec = TextDecoder(columns=parse_columns("t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z", NAMES), skip_first_line=False)
    with pytest.raises(WireError, match="device sends 6 values per line, --columns names 7"):
        dec.feed(b"1,2,3,4,5,6\n" * 3)


def test_hyperimu_csv_without_columns_reads_time_then_model_channels() -> None:
    """timestamp, acc, gyro, magnetometer: the extra fields are ignored and the user is told."""
    dec = TextDecoder(expected_channels=6, skip_first_line=False)
    lines = b"".join(b"%d,0.1,0.2,9.8,0.01,0.02,0.03,30.5,-12.0,40.1\n" % (1_700_000_000_000 + 10 * k)
                     for k in range(5))
    batch = dec.feed(lines)
    assert batch is not None and dec.note and "3 more fields per line ignored" in dec.note
    np.testing.assert_allclose(batch.values[0], [0.1, 0.2, 9.8, 0.01, 0.02, 0.03], rtol=1e-6)
    assert batch.t[1] - batch.t[0] == 10


# ---------------------------------------------------------------------------------------------------------
# Sensor Logger


def _sl(entries: list[tuple[str, int, tuple[float, float, float]]], **extra: object) -> bytes:
    payload = [{"name": n, "time": t, "values": {"x": v[0], "y": v[1], "z": v[2]}, "accuracy": 3}
               for n, t, v in entries]
    doc = {"messageId": 1, "sessionId": "s", "deviceId": "d", "payload": payload, **extra}
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


T0 = 1_700_000_000_000_000_000


def test_sensor_logger_parts_units_ns_and_unknown_sensors() -> None:
    dec = JsonDecoder(NAMES)
    batch = dec.feed(_sl([("accelerometer", T0, (0.1, 0.2, 0.3)), ("gravity", T0 + 3_000_000, (0.0, 0.0, 9.8)),
                          ("gyroscope", T0 + 1_000_000, (0.01, 0.02, 0.03)), ("magnetometer", T0, (1, 2, 3)),
                          ("accelerometer", T0 + 10_000_000, (0.4, 0.5, 0.6)), ("location", T0, (0, 0, 0))]))
    assert batch is not None and batch.time_unit == "ns" and batch.acc_unit == "m/s2"
    assert batch.gyro_unit == "rad/s" and batch.layout == ("accelerometer", "gravity", "gyroscope")
    parts = {p.name: p for p in batch.parts}
    assert parts["accelerometer"].channels == (0, 1, 2) and parts["gyroscope"].channels == (3, 4, 5)
    assert parts["accelerometer"].t.tolist() == [T0, T0 + 10_000_000]  # exact integer ns
    np.testing.assert_allclose(parts["gravity"].values, [[0.0, 0.0, 9.8]])
    assert dec.unknown_sensors == 2 and dec.unknown_names == {"magnetometer", "location"}
    assert batch.samples == 4 and decoder_counters(dec)["unknown_sensors"] == 2


def test_sensor_logger_totalacceleration_is_used_where_sent() -> None:
    dec = JsonDecoder(NAMES)
    batch = dec.feed(_sl([("totalacceleration", T0, (0.1, 0.2, 9.9)), ("accelerometer", T0, (0.1, 0.2, 0.1)),
                          ("gravity", T0, (0.0, 0.0, 9.8)), ("gyroscope", T0, (0, 0, 0))]))
    assert batch is not None and batch.layout == ("totalacceleration", "gyroscope")
    assert {p.name for p in batch.parts} == {"totalacceleration", "gyroscope"}
    assert dec.unknown_sensors == 2  # accelerometer and gravity readings are not used next to the total


def test_sensor_logger_summed_acc_reaches_the_model_units() -> None:
    """Through the classifier's resampler: accelerometer + gravity, in m/s2, on separate clocks, sum to g."""
    from hartool.core.resample import Resampler
    from hartool.core.timebase import DeviceClock, channel_scales

    dec = JsonDecoder(NAMES)
    entries = []
    for k in range(30):
        entries += [("accelerometer", T0 + k * 10_000_000 + 2_000_000, (0.0, 0.0, 1.0)),
                    ("gravity", T0 + k * 10_000_000, (0.0, 0.0, 8.80665)),
                    ("gyroscope", T0 + k * 10_000_000 + 5_000_000, (0.5, 0.0, 0.0))]
    batch = dec.feed(_sl(entries))
    scales = channel_scales([{"name": n, "unit": "g" if n[0] == "a" else "rad/s"} for n in NAMES],
                            batch.acc_unit, batch.gyro_unit)
    clock, r = DeviceClock(batch.time_unit), Resampler(50.0, 6, {p: c for p, c in
                                                                 [(p.name, p.channels) for p in batch.parts]})
    clock.start_at_earliest(p.t for p in batch.parts)
    chunks = []
    for p in batch.parts:
        chunks += r.push(p.name, clock.seconds(p.t), p.values * scales[list(p.channels)])
    x = np.concatenate([c.values for c in chunks])
    assert len(x) == 15  # 5 ms (the last clock to start) .. 285 ms (gravity, the first to end)
    np.testing.assert_allclose(x[:, 2], 1.0, rtol=1e-6)  # (1.0 + 8.80665) m/s2 = 1 g
    np.testing.assert_allclose(x[:, 3], 0.5)


def test_sensor_logger_bad_batches_and_missing_sensor() -> None:
    dec = JsonDecoder(NAMES)
    assert dec.feed(b'{"messageId":1,"payload":[]}\n{"payload":"x"}\nnot json\n') is None
    assert dec.bad_batches == 2 and dec.bad_lines == 1
    with pytest.raises(WireError, match="Sensor Logger sends no gyroscope: enable it in the app"):
        for k in range(5):
            dec.feed(_sl([("accelerometer", T0 + k, (0, 0, 0)), ("gravity", T0 + k, (0, 0, 9.8))]))


# ---------------------------------------------------------------------------------------------------------
# HyperIMU JSON and named fields


def test_hyperimu_json_packets() -> None:
    dec = JsonDecoder(NAMES)
    lines = b"".join(json.dumps({"op": "hyperimu", "Timestamp": 1_700_000_000_000 + 10 * k,
                                 "Accelerometer": [0.1, 0.2, 9.8 + k], "Gyroscope": [0.01, 0.02, 0.03],
                                 "Magnetometer": [30.0, 1.0, 2.0]}).encode() + b"\n" for k in range(3))
    batch = dec.feed(lines)
    assert batch is not None and batch.time_unit == "ms" and batch.acc_unit == "m/s2"
    np.testing.assert_allclose(batch.values[:, 2], [9.8, 10.8, 11.8], rtol=1e-6)
    assert batch.t.tolist() == [1_700_000_000_000, 1_700_000_000_010, 1_700_000_000_020]
    assert dec.unknown_sensors == 3 and dec.unknown_names == {"Magnetometer"}


def test_named_fields_one_object_per_line_and_split_reads() -> None:
    dec = JsonDecoder(NAMES, time_unit="ms")
    rows = [{"t": 20 * k, **{n: k + i / 10 for i, n in enumerate(NAMES)}, "temp": 25} for k in range(4)]
    data = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    out = [dec.feed(data[i:i + 13]) for i in range(0, len(data), 13)]
    batches = [b for b in out if b is not None]
    values = np.concatenate([b.values for b in batches])
    np.testing.assert_allclose(values[:, 5], [k + 0.5 for k in range(4)], rtol=1e-6)
    assert all(b.time_unit == "ms" and b.acc_unit is None for b in batches)
    assert dec.feed(b'{"t": 80, "acc_x": 1}\n') is None and dec.bad_lines == 1  # a channel missing


def test_sniff_and_auto_decoder_pick_json() -> None:
    line = _sl([("accelerometer", T0, (0, 0, 0))])
    assert sniff_protocol(line) == "json"
    assert sniff_protocol(b"0.1,0.2,0.3\n" * 5) == "text"
    dec = AutoDecoder(channel_names=NAMES, skip_first_line=False)
    dec.feed(b'{"t": 0, ' + b", ".join(b'"%s": 1' % n.encode() for n in NAMES) + b"}\n" * 1 + b" " * 300)
    assert dec.protocol == "json"
    assert isinstance(make_decoder("json", channel_names=NAMES), JsonDecoder)


def test_auto_decoder_detects_again_after_a_bad_start() -> None:
    """64 KB of random bytes (zeros and all) make the first sniff say binary; the text lines after it still
    come out, and nothing is guessed again once samples flow."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes()
    lines = b"".join(b"%d,%.3f,%.3f,%.3f,0.1,0.2,0.3\n" % (10 * k, k / 7, -k / 9, 1.0) for k in range(1000))
    dec = AutoDecoder(expected_channels=6)
    data = noise + lines
    got = []
    for i in range(0, len(data), 4096):  # what a socket read returns
        batch = dec.feed(data[i:i + 4096])
        if batch is not None:
            got.append(batch)
    assert dec.protocol == "text"
    t = np.concatenate([b.t for b in got])
    assert t[-1] == 9990 and np.all(np.diff(t) == 10)  # every line after the first few, in order
    assert len(t) >= 990 and decoder_counters(dec)["discarded_bytes"] >= 60 * 1024
