"""Device time and units (hartool.core.timebase): unit detection from timestamp spacing, clocks, unit tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hartool.core.errors import WireError
from hartool.core.timebase import RESET_S, ClockResets, DeviceClock, channel_scales, detect_time_unit

CHANNELS = [{"name": n, "unit": "g" if n.startswith("acc") else "rad/s"}
            for n in ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")]


@pytest.mark.parametrize(("rate", "unit", "scale", "start"), [
    (50.0, "ms", 1e3, 123_456),             # millis() at 50 Hz: 20 ms steps
    (104.0, "us", 1e6, 4_000_000_000),      # Arduino micros() at 104 Hz: ~9615 us steps (must not be ms)
    (52.0, "us", 1e6, 0),
    (100.0, "ns", 1e9, 1_700_000_000_000_000_000),  # Sensor Logger epoch ns
    (200.0, "s", 1.0, 0.0),
    (1000.0, "ms", 1e3, 1_700_000_000_000),  # epoch ms at 1 kHz: 1 ms steps
])
def test_detect_time_unit_from_spacing(rate: float, unit: str, scale: float, start: float) -> None:
    rng = np.random.default_rng(0)
    t = start + np.cumsum(np.full(12, scale / rate) * rng.uniform(0.9, 1.1, 12))
    if unit != "s":
        t = np.round(t)
    assert detect_time_unit(t) == unit


@pytest.mark.parametrize(("t", "why"), [
    ([0, 0, 0, 0], "do not advance"),
    ([0, 300, 600, 900], "advance by 300"),   # 3.3 Hz in ms or 3.3 kHz in us: no IMU rate fits
    ([1, 2], "fewer than 3"),
])
def test_detect_time_unit_says_when_it_cannot_tell(t: list[float], why: str) -> None:
    with pytest.raises(WireError, match=why) as info:
        detect_time_unit(t)
    assert "--time-unit" in str(info.value) and "\n" not in str(info.value)


def test_device_clock_keeps_integer_resolution_of_epoch_ns() -> None:
    clock = DeviceClock("ns")
    t0 = 1_700_000_000_123_456_789
    t = np.asarray([t0, t0 + 10_000_001, t0 + 20_000_003], dtype=np.int64)
    np.testing.assert_allclose(clock.seconds(t), [0.0, 0.010000001, 0.020000003], rtol=0, atol=1e-15)
    assert clock.seconds(np.asarray([t0 + 1], dtype=np.int64))[0] == pytest.approx(1e-9, abs=1e-15)


def test_device_clock_auto_resolves_and_rejects_bad_unit() -> None:
    clock = DeviceClock("auto")
    assert not clock.known
    assert clock.resolve(np.arange(10) * 9615.0) == "us" and clock.detected
    np.testing.assert_allclose(clock.seconds(np.asarray([9615.0, 19230.0])), [0.0, 0.009615])
    with pytest.raises(WireError, match="unknown time unit"):
        DeviceClock("minutes")


def test_channel_scales_units_and_raw_counts() -> None:
    scales = channel_scales(CHANNELS, acc_unit="m/s2", gyro_unit="deg/s")
    np.testing.assert_allclose(scales, [1 / 9.80665] * 3 + [math.pi / 180] * 3, rtol=1e-6)
    raw = channel_scales(CHANNELS, acc_unit="raw", gyro_unit="raw", acc_lsb=1 / 16384, gyro_lsb=1 / 131)
    np.testing.assert_allclose(raw, [1 / 16384] * 3 + [math.pi / 180 / 131] * 3, rtol=1e-6)
    # A model trained in m/s2 gets g converted the other way.
    ms2 = [{"name": "acc_x", "unit": "m/s2"}]
    np.testing.assert_allclose(channel_scales(ms2, acc_unit="g"), [9.80665], rtol=1e-6)


@pytest.mark.parametrize(("kw", "msg"), [
    ({"acc_unit": "raw"}, "--acc-unit raw needs --acc-lsb"),
    ({"gyro_lsb": 0.01}, "--gyro-lsb only applies with --gyro-unit raw"),
    ({"acc_unit": "raw", "acc_lsb": -1.0}, "--acc-lsb must be a positive number"),
    ({"acc_unit": "furlongs"}, "unknown acc unit"),
])
def test_channel_scales_rejects_what_it_would_ignore(kw: dict, msg: str) -> None:
    with pytest.raises(WireError, match=msg):
        channel_scales(CHANNELS, **kw)


def test_device_clock_unwraps_a_32_bit_micros_counter() -> None:
    """Arduino micros() wraps every 71.6 minutes: time must go on, not jump back 4295 s."""
    raw = (4_294_000_000 + np.arange(0, 3_000_000, 9615)) & 0xFFFFFFFF
    clock = DeviceClock("us")
    t = np.concatenate([clock.seconds(raw[:100]), clock.seconds(raw[100:])])
    assert clock.wraps == 1 and raw[100:].min() < raw[0]
    np.testing.assert_allclose(np.diff(t), 0.009615, atol=1e-9)
    # A live board sends a line or a few per read (the small-batch path): the same seconds, wrap included.
    for size in (1, 5):
        live = DeviceClock("us")
        t_live = np.concatenate([live.seconds(raw[i:i + size]) for i in range(0, len(raw), size)])
        np.testing.assert_array_equal(t_live, t)
        assert live.wraps == 1


@pytest.mark.parametrize("raw", [np.array([1_700_000_000_123_456_789, 1_700_000_000_133_456_790]),
                                 np.array([12.5, 12.52]), np.array([4_294_967_000, 4_294_967_290], dtype=np.uint32)])
def test_one_timestamp_at_a_time_gives_the_same_seconds(raw: np.ndarray) -> None:
    whole, single = DeviceClock("ns"), DeviceClock("ns")
    expected = whole.seconds(raw)
    got = np.concatenate([single.seconds(raw[i:i + 1]) for i in range(len(raw))])
    np.testing.assert_array_equal(got, expected)


def test_clock_resets_tell_a_restart_from_jitter_and_continue_one_period_after_the_last_sample() -> None:
    policy = ClockResets(period_s=0.02)
    t = np.array([10.00, 10.02, 10.01, 10.04, 0.0, 0.02, 0.005, 0.04])  # jitter, restart, jitter again
    prev_max, cut = policy.scan(t, last=9.98)
    assert cut == 4 and prev_max[4] == pytest.approx(10.04)  # only the jump back by more than RESET_S
    assert 10.04 - 0.0 > RESET_S > 10.02 - 10.01
    placed = policy.place(t, last=9.98)
    np.testing.assert_allclose(placed, [10.00, 10.02, 10.02, 10.04, 10.06, 10.08, 10.08, 10.10])
    assert policy.count == 1 and policy.offset == pytest.approx(10.06)
    # The shift stays with the clock: its next batch continues where the restarted time line is.
    np.testing.assert_allclose(policy.place(np.array([0.06, 0.08]), last=float(placed[-1])), [10.12, 10.14])
    assert policy.count == 1


def test_clock_resets_without_a_past_see_no_restart() -> None:
    policy = ClockResets(period_s=0.01)
    prev_max, cut = policy.scan(np.array([5.0, 5.01]), last=None)
    assert cut == 2 and prev_max[0] == -np.inf
