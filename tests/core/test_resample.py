"""Causal resampling onto the model's grid (hartool.core.resample): exact on known signals, gaps, clocks."""

from __future__ import annotations

import numpy as np
import pytest

from hartool.core.resample import Resampler


def _run(r: Resampler, feeds: list[tuple[str, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, list]:
    chunks = []
    for name, t, v in feeds:
        chunks += r.push(name, t, v)
    if not chunks:
        return np.zeros(0), np.zeros((0, r.channels)), []
    return (np.concatenate([c.t for c in chunks]), np.concatenate([c.values for c in chunks]),
            [c.restart for c in chunks])


def _jittery(n: int, period: float, jitter: float, seed: int, start: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return start + np.concatenate(([0.0], np.cumsum(period + rng.uniform(-jitter, jitter, n - 1))))


@pytest.mark.parametrize("chunk", [1, 7, 64, 5000])
def test_linear_ramps_are_reproduced_exactly_on_the_grid(chunk: int) -> None:
    t = _jittery(3000, 0.01, 0.002, seed=1)  # ~100 Hz with +-2 ms jitter
    v = np.stack([3.0 * t + 1.0, -2.0 * t, np.full_like(t, 0.5)], axis=1)
    r = Resampler(50.0, 3)
    g, x, restarts = _run(r, [("imu", t[i:i + chunk], v[i:i + chunk]) for i in range(0, len(t), chunk)])
    np.testing.assert_allclose(np.diff(g), 0.02, atol=1e-12)  # a 50 Hz grid
    assert g[0] == 0.0 and g[-1] <= t[-1] < g[-1] + 0.02  # causal: every point covered, none missing
    np.testing.assert_allclose(x, np.stack([3.0 * g + 1.0, -2.0 * g, np.full_like(g, 0.5)], axis=1), atol=1e-12)
    assert not any(restarts) and r.gaps == 0 and r.backwards == 0
    assert r.samples_out == len(g) == int(np.floor(t[-1] / 0.02)) + 1


def test_samples_on_the_grid_pass_through_unchanged() -> None:
    t = np.arange(500) * 0.02
    v = np.random.default_rng(0).normal(size=(500, 6))
    g, x, _ = _run(Resampler(50.0, 6), [("imu", t, v)])
    np.testing.assert_array_equal(x, v)
    np.testing.assert_array_equal(g, t)


def test_grid_point_goes_out_as_soon_as_it_is_covered() -> None:
    r = Resampler(50.0, 1)
    assert [len(c.t) for c in r.push("imu", np.array([0.0, 0.013]), np.zeros((2, 1)))] == [1]  # only t=0
    assert r.push("imu", np.array([0.019]), np.zeros((1, 1))) == []  # 0.02 not covered yet
    out = r.push("imu", np.array([0.021]), np.ones((1, 1)))
    assert [c.t.tolist() for c in out] == [[0.02]]
    assert out[0].values[0, 0] == pytest.approx(0.5)  # halfway between 0.019 (0) and 0.021 (1)


def test_separate_clocks_are_aligned_and_summed() -> None:
    """Sensor Logger style: accelerometer, gravity and gyro on their own jittery ~100 Hz clocks."""
    ta, tg, ty = (_jittery(1000, 0.01, 0.002, seed=s, start=o) for s, o in ((1, 0.004), (2, 0.0), (3, 0.007)))
    lin = np.stack([np.sin(ta), 2 * ta, -ta], 1)  # any signal for acc: only the sum must be linear
    grav = np.stack([5.0 - np.sin(tg), 0.5 * tg, np.full_like(tg, 9.8)], 1)
    gyro = np.stack([ty, -ty, 2 * ty], 1)
    r = Resampler(50.0, 6, parts={"acc": (0, 1, 2), "gravity": (0, 1, 2), "gyro": (3, 4, 5)})
    feeds = []
    for k in range(0, 1000, 50):  # batches of half a second, each sensor's readings in turn
        feeds += [("acc", ta[k:k + 50], lin[k:k + 50]), ("gravity", tg[k:k + 50], grav[k:k + 50]),
                  ("gyro", ty[k:k + 50], gyro[k:k + 50])]
    g, x, _ = _run(r, feeds)
    assert g[0] == pytest.approx(0.007)  # the first time every sensor has data
    assert g[-1] <= min(ta[-1], tg[-1], ty[-1])
    # sin() is not linear, but acc + gravity interpolated separately still sums to sin - sin + 5 exactly
    # only where both hit the grid; check the linear channels exactly and the summed one loosely.
    np.testing.assert_allclose(x[:, 1], 2.5 * g, atol=1e-12)
    np.testing.assert_allclose(x[:, 2], 9.8 - g, atol=1e-12)
    np.testing.assert_allclose(x[:, 0], 5.0, atol=1e-4)
    np.testing.assert_allclose(x[:, 3:], np.stack([g, -g, 2 * g], 1), atol=1e-12)


def test_nothing_goes_out_until_every_clock_has_data() -> None:
    r = Resampler(50.0, 2, parts={"a": (0,), "b": (1,)})
    assert r.push("a", np.arange(100) * 0.01, np.zeros((100, 1))) == []
    out = r.push("b", np.arange(50) * 0.01, np.ones((50, 1)))
    assert sum(len(c.t) for c in out) == 25  # 0 .. 0.48, covered by both


def test_hole_in_device_time_restarts_and_is_counted() -> None:
    t = np.concatenate([np.arange(100) * 0.01, 1.5 + np.arange(100) * 0.01])  # 0.51 s without samples
    r = Resampler(50.0, 1)
    out = r.push("imu", t, t[:, None])
    assert [(len(c.t), c.restart) for c in out] == [(50, False), (50, True)]
    assert out[1].t[0] == 1.5  # the grid restarts at the first sample after the hole
    assert r.gaps == 1 and r.gap_samples == 25  # (1.5 - 0.99) s at 50 Hz, minus the sample at its end
    # Never interpolated across: every value is a real sample's (linear signal: value == time).
    np.testing.assert_allclose(np.concatenate([c.values[:, 0] for c in out]), np.concatenate([c.t for c in out]))


def test_short_jitter_holes_are_interpolated_not_gaps() -> None:
    t = np.concatenate([np.arange(50) * 0.01, 0.49 + 0.07 + np.arange(50) * 0.01])  # 70 ms < 4 periods
    r = Resampler(50.0, 1)
    _run(r, [("imu", t, t[:, None])])
    assert r.gaps == 0


def test_backwards_timestamps_are_dropped_and_counted() -> None:
    t = np.arange(20) * 0.01
    t[[5, 11, 12]] = [0.03, 0.105, 0.105]  # one step back, then a repeat of the previous time
    r = Resampler(50.0, 1)
    g, x, _ = _run(r, [("imu", t[:10], t[:10, None]), ("imu", t[10:], t[10:, None])])
    assert r.backwards == 2  # index 5 (0.03 after 0.04) and the repeated 0.105; 0.105 once is kept
    np.testing.assert_allclose(x[:, 0], g)


def test_clock_restart_continues_the_time_line() -> None:
    """A u32 micros() wrap (or a board reset): a big jump back is a new clock, not 1000s of backwards samples."""
    t = np.concatenate([4294.9 + np.arange(50) * 0.01, np.arange(50) * 0.01])
    r = Resampler(50.0, 1)
    g, _, restarts = _run(r, [("imu", t, np.zeros((100, 1)))])
    assert r.clock_resets == 1 and r.gaps == 1 and r.backwards == 0
    assert restarts == [False, True] and np.all(np.diff(g) > 0)
    assert len(g) >= 48


def test_explicit_restart_forgets_pending_samples() -> None:
    r = Resampler(50.0, 1)
    r.push("imu", np.arange(10) * 0.01, np.zeros((10, 1)))
    r.restart()
    out = r.push("imu", 0.2 + np.arange(10) * 0.01, np.ones((10, 1)))
    assert out[0].restart and out[0].t[0] == pytest.approx(0.2) and np.all(out[0].values == 1.0)
    assert r.gaps == 0  # the caller counts the gap it reported


@pytest.mark.parametrize("rate_in", [25.0, 50.0, 104.0, 400.0])
def test_one_sample_at_a_time_equals_the_general_path_bit_for_bit(rate_in: float) -> None:
    """A live stream pushes a line or a few at a time through a shortcut; batches of 50 take the general path.
    With jitter, a hole, a backwards sample and a clock restart, both give the same grid, values and counters."""
    t = _jittery(1200, 1.0 / rate_in, 0.2 / rate_in, seed=4)
    t[600:] += 0.5  # a hole
    t[300] = t[299] - 0.001  # backwards: dropped
    t[900:] -= 3.0  # the clock restarts
    v = np.random.default_rng(5).normal(size=(len(t), 6))
    runs = []
    for size in (1, 3, 50):
        r = Resampler(50.0, 6)
        runs.append((r, _run(r, [("imu", t[i:i + size], v[i:i + size]) for i in range(0, len(t), size)])))
    counters = ("backwards", "gaps", "gap_samples", "clock_resets", "samples_in", "samples_out")
    (general, b) = runs[-1]
    assert general.backwards == 1 and general.gaps == 2 and general.samples_out > 0 and sum(b[2]) == 2
    for r, a in runs[:-1]:
        # Chunks differ in size; the concatenated grid, values and the restart count must not.
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert sum(a[2]) == 2
        assert [getattr(r, c) for c in counters] == [getattr(general, c) for c in counters]
