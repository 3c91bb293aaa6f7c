"""What a phone or a board measures when it carries a recorded motion: its own rate, a jittery clock, gravity apart.

The source is a recording in model units (acc in g, gyro in rad/s) at its dataset rate (50 Hz for HAPT).
A simulated device samples that motion on its own clock:

* :func:`device_clock`: sample times ``k / (rate * (1 + skew)) + offset`` plus gaussian jitter (clipped to
  ±45 % of a period so the times stay strictly increasing, as a device's timestamps do).
* :func:`sample_at`: the recording at those times by linear interpolation (between two 50 Hz samples the
  true motion is unknown; linear is what a receiver resampling back to 50 Hz undoes best).
* :func:`split_gravity`: Sensor Logger sends ``accelerometer`` *without* gravity and ``gravity`` apart.
  The gravity estimate here is a causal first-order low-pass of the total acceleration (time constant
  ``tau_s``, like the phone's own sensor fusion it only looks at the past); the linear acceleration is
  the rest. Both are computed on the recording's samples, so ``linear + gravity == total`` exactly at every
  recorded sample, and, linear interpolation being linear, at every time in between: a receiver that
  interpolates both onto one grid and adds them gets the total acceleration back.

Units for phones: :data:`STANDARD_GRAVITY` converts g to m/s².
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["STANDARD_GRAVITY", "device_clock", "sample_at", "split_gravity"]

STANDARD_GRAVITY = 9.80665  # m/s² per g


def device_clock(
    duration_s: float,
    rate_hz: float,
    jitter_ms: float = 0.0,
    rng: np.random.Generator | None = None,
    *,
    offset_s: float = 0.0,
    skew: float = 0.0,
) -> np.ndarray:
    """Sample times (s, float64, strictly increasing) of a device clock over ``[0, duration_s]``.

    ``skew`` is the clock's relative rate error (0.003: the device runs 0.3 % fast), ``offset_s`` when its
    first sample falls, ``jitter_ms`` the standard deviation of each timestamp's noise.
    """
    if not rate_hz > 0 or not math.isfinite(rate_hz):
        raise ValueError(f"rate_hz must be a positive number, got {rate_hz}")
    if jitter_ms < 0:
        raise ValueError(f"jitter_ms must be >= 0, got {jitter_ms}")
    period = 1.0 / (rate_hz * (1.0 + skew))
    n = int(math.floor((duration_s - offset_s) / period)) + 1
    t = offset_s + np.arange(max(n, 0), dtype=np.float64) * period
    if jitter_ms > 0 and len(t):
        rng = rng or np.random.default_rng(0)
        noise = np.clip(rng.normal(0.0, jitter_ms / 1000.0, len(t)), -0.45 * period, 0.45 * period)
        t = t + noise
    return t[(t >= 0.0) & (t <= duration_s)]


def sample_at(values: np.ndarray, src_rate_hz: float, t_s: np.ndarray) -> np.ndarray:
    """The recording (``values[k]`` at ``k / src_rate_hz``) linearly interpolated at times ``t_s`` (float64)."""
    arr = np.asarray(values, dtype=np.float64)
    src_t = np.arange(len(arr), dtype=np.float64) / src_rate_hz
    return np.column_stack([np.interp(t_s, src_t, arr[:, c]) for c in range(arr.shape[1])])


def split_gravity(acc_total: np.ndarray, rate_hz: float, tau_s: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(linear acceleration, gravity) of a total acceleration (n, 3), in its units; their sum is the input.

    Gravity is the causal exponential low-pass ``g[k] = g[k-1] + a * (total[k] - g[k-1])`` with
    ``a = 1 - exp(-1 / (rate * tau))``, started at the first sample (a phone at rest starts right).
    """
    total = np.asarray(acc_total, dtype=np.float64)
    alpha = 1.0 - math.exp(-1.0 / (rate_hz * tau_s))
    gravity = np.empty_like(total)
    g = total[0].copy() if len(total) else np.zeros(total.shape[1])
    for k, row in enumerate(total):  # a recursive filter: each step needs the previous one
        g += alpha * (row - g)
        gravity[k] = g
    return total - gravity, gravity
