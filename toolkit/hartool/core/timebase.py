"""Device time and units: the one place that turns what a device sends into seconds and model units.

* Time: ``--time-unit auto|s|ms|us|ns``. ``auto`` reads the median spacing of the first timestamps and
  picks the one unit in which that spacing is a plausible IMU rate (5-2000 Hz). The plausible spacings of
  the four units do not overlap (s: 0.5-200 ms, ms: 0.5-200, us: 500-200,000, ns: 5e5-2e8), so the answer
  is unique or there is none, and then the user is told in one line to pass ``--time-unit``.
* Units: acceleration in g, m/s2 or raw counts (with g per count), angular rate in rad/s, deg/s or raw
  counts (with deg/s per count), converted to the units a bundle's channels name. The CSV recording
  format and the stream use these same tables.

numpy only: this runs on the edge device.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from .errors import WireError

__all__ = [
    "ACC_UNITS",
    "ACC_UNIT_FACTORS",
    "GYRO_UNITS",
    "GYRO_UNIT_FACTORS",
    "MAX_PLAUSIBLE_HZ",
    "MIN_PLAUSIBLE_HZ",
    "RESET_S",
    "STANDARD_GRAVITY",
    "TIME_UNITS",
    "UNIT_SECONDS",
    "ClockResets",
    "DeviceClock",
    "channel_scales",
    "detect_time_unit",
]

STANDARD_GRAVITY = 9.80665
TIME_UNITS: tuple[str, ...] = ("auto", "s", "ms", "us", "ns")
UNIT_SECONDS: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
MIN_PLAUSIBLE_HZ = 5.0
MAX_PLAUSIBLE_HZ = 2000.0
#: A device clock that goes back by more than this (s) restarted (board reset, counter wrap not undone);
#: less is jitter (a phone's timestamps reordered across threads, a late sample).
RESET_S = 1.0

ACC_UNITS: tuple[str, ...] = ("g", "m/s2", "raw")
GYRO_UNITS: tuple[str, ...] = ("rad/s", "deg/s", "raw")
#: Factor that turns a value in the named unit into the canonical unit (g, rad/s); spellings the CSV
#: ``# units:`` line accepts are included.
ACC_UNIT_FACTORS: dict[str, float] = {"g": 1.0, "m/s2": 1.0 / STANDARD_GRAVITY, "m/s^2": 1.0 / STANDARD_GRAVITY}
GYRO_UNIT_FACTORS: dict[str, float] = {"rad/s": 1.0, "deg/s": math.pi / 180.0, "dps": math.pi / 180.0}


def detect_time_unit(t: np.ndarray | Sequence[float], min_hz: float = MIN_PLAUSIBLE_HZ,
                     max_hz: float = MAX_PLAUSIBLE_HZ) -> str:
    """The unit ("s", "ms", "us", "ns") in which the median spacing of ``t`` is a rate in [min_hz, max_hz].

    Raises :class:`WireError` (one line, naming the spacing) when no unit or more than one fits, or the
    timestamps do not advance.
    """
    arr = np.asarray(t, dtype=np.float64)
    if arr.size < 3:
        raise WireError("cannot tell the device's time unit from fewer than 3 timestamps; pass --time-unit")
    step = float(np.median(np.diff(arr)))
    if not math.isfinite(step) or step <= 0:
        raise WireError(f"cannot tell the device's time unit: timestamps do not advance (median step {step:g}); "
                        "pass --time-unit s|ms|us|ns")
    fits = [u for u, sec in UNIT_SECONDS.items() if min_hz <= 1.0 / (step * sec) <= max_hz]
    if len(fits) != 1:
        raise WireError(f"cannot tell the device's time unit: timestamps advance by {step:g} per sample, which is "
                        f"no IMU rate of {min_hz:g}-{max_hz:g} Hz in s, ms, us or ns; pass --time-unit s|ms|us|ns")
    return fits[0]


_U32 = 1 << 32
_FEW_STAMPS = 16


class Unwrap32:
    """The one place 32-bit counter wraps are undone (an MCU's micros()/millis(), a frame's u32 milliseconds).

    Called with each new stretch of raw stamps in order; a drop by more than 2^31 counts as a wrap, and every
    later stamp is shifted by the wraps so far. Stamps outside [0, 2^32) are returned as they are.
    """

    def __init__(self) -> None:
        self.wraps = 0
        self._last_raw: float | None = None

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        """Undo wraps of an unsigned 32-bit counter (an MCU's micros()/millis()): a drop by more than 2^31."""
        if not arr.size or arr.dtype.kind not in "iuf":
            return arr
        if arr.size <= _FEW_STAMPS:  # a live stream's line or few per read: Python arithmetic is cheaper
            xs = arr.ravel().tolist()
            if min(xs) < 0 or max(xs) >= _U32:
                return arr
            prev = self._last_raw if self._last_raw is not None else float(xs[0])
            wraps = []
            for x in xs:
                if x - prev < -_U32 / 2:
                    self.wraps += 1
                wraps.append(self.wraps)
                prev = x
            self._last_raw = float(xs[-1])
            if not self.wraps:
                return arr
            out = arr.astype(np.int64) if arr.dtype.kind in "iu" else arr.astype(np.float64)
            return out + np.asarray(wraps, dtype=out.dtype).reshape(arr.shape) * _U32
        if float(arr.max()) >= _U32 or float(arr.min()) < 0:
            return arr
        prev = self._last_raw if self._last_raw is not None else float(arr.flat[0])
        self._last_raw = float(arr.flat[-1])
        steps = np.diff(np.concatenate(([prev], arr.astype(np.float64))))
        wrapped = np.cumsum(steps < -_U32 / 2)
        if not wrapped[-1] and not self.wraps:
            return arr
        out = arr.astype(np.int64) if arr.dtype.kind in "iu" else arr.astype(np.float64)
        out = out + (self.wraps + wrapped) * _U32
        self.wraps += int(wrapped[-1])
        return out


class ClockResets:
    """The one rule for a device clock that goes back in time: a restart, or jitter.

    A sample more than ``reset_s`` before the newest time seen on its clock is a restart: the clock began
    again (board reset, an unwrapped counter), and its time line continues one ``period_s`` after the last
    sample before it (:meth:`continue_after`, which keeps the shift as ``offset`` for the clock's later
    samples). A smaller step back is jitter, left to the caller: the resampler drops it (interpolation needs
    advancing times) and counts it, the recorder keeps it at the previous sample's time (see
    :meth:`place`). One instance per clock (a sensor on its own clock has its own).
    """

    def __init__(self, period_s: float, reset_s: float = RESET_S) -> None:
        self.period_s = period_s
        self.reset_s = reset_s
        self.offset = 0.0  # added to the clock's raw seconds: the sum of the shifts so far
        self.count = 0  # restarts so far

    def scan(self, t: np.ndarray, last: float | None) -> tuple[np.ndarray, int]:
        """The newest time before each sample of ``t`` (``last``: the newest before the batch), and the index
        of the first restart (``len(t)``: none)."""
        prev_max = np.maximum.accumulate(np.concatenate(([-np.inf if last is None else last], t[:-1])))
        jumps = np.flatnonzero(t < prev_max - self.reset_s)
        return prev_max, int(jumps[0]) if len(jumps) else len(t)

    def continue_after(self, last: float, t: np.ndarray) -> np.ndarray:
        """``t`` (starting at a restart) shifted to begin one period after ``last``; counted and remembered."""
        shift = last + self.period_s - float(t[0])
        self.offset += shift
        self.count += 1
        return t + shift

    def place(self, t: np.ndarray, last: float | None) -> np.ndarray:
        """Times in order on one time line: every restart continued, jitter held at the newest time before it.

        Holding a late sample at its predecessor's time keeps the device clock as it was for the rest of the
        stream (shifting everything after a few ms of jitter would move every later sample off its own time).
        """
        t = t + self.offset
        prev_max, cut = self.scan(t, last)
        while cut < len(t):
            t = np.concatenate((t[:cut], self.continue_after(float(prev_max[cut]), t[cut:])))
            prev_max, cut = self.scan(t, last)
        return np.maximum(t, prev_max)


class DeviceClock:
    """Raw device timestamps -> seconds since the stream's first timestamp.

    The origin is subtracted in the device's own unit before scaling, so integer epoch nanoseconds and
    milliseconds keep their resolution. ``unit`` may be "auto": then :meth:`resolve` must be given the
    first timestamps (see :func:`detect_time_unit`) before :meth:`seconds` is called.
    """

    def __init__(self, unit: str = "auto") -> None:
        if unit not in TIME_UNITS:
            raise WireError(f"unknown time unit {unit!r}; choose one of {', '.join(TIME_UNITS)}")
        self.unit: str | None = None if unit == "auto" else unit
        self.detected = False
        self.origin: float | int | None = None
        self._unwrap = Unwrap32()  # micros() wraps every 71.6 min, millis() every 49.7 days

    @property
    def wraps(self) -> int:
        """32-bit counter wraps undone so far."""
        return self._unwrap.wraps

    @property
    def known(self) -> bool:
        return self.unit is not None

    def resolve(self, first_times: np.ndarray) -> str:
        """Fix the unit from the first timestamps (no-op when it is already known); returns it."""
        if self.unit is None:
            self.unit = detect_time_unit(first_times)
            self.detected = True
        return self.unit

    def start_at_earliest(self, stamps: Iterable[np.ndarray]) -> None:
        """Put the origin at the earliest first stamp of several sensor clocks (no-op once there is one).

        The first stamp is taken as a Python number, as :meth:`seconds` takes it, so integer stamps stay exact."""
        if self.origin is not None:
            return
        firsts = [np.asarray(t).flat[0].item() for t in stamps if len(t)]
        if firsts:
            self.origin = min(firsts)

    def seconds(self, t: np.ndarray, unit: str | None = None) -> np.ndarray:
        """Seconds since the origin (the first timestamp seen, unless :meth:`start_at_earliest` chose one)."""
        unit = unit or self.unit
        if unit is None:
            raise WireError("device time unit not known yet")
        arr = self._unwrap(np.asarray(t))
        if self.origin is None:
            self.origin = arr.flat[0].item() if arr.size else 0
        if arr.size == 1 and arr.dtype.kind in "iuf":  # one line at a time: the same arithmetic on scalars
            x = arr.item()
            exact = isinstance(x, int) and isinstance(self.origin, int)  # int64 - int64, then to float
            rel = float(x - self.origin) if exact else float(x) - float(self.origin)
            return np.array([rel * UNIT_SECONDS[unit]]).reshape(arr.shape)
        if arr.dtype.kind in "iu" and isinstance(self.origin, int):
            rel = (arr.astype(np.int64) - np.int64(self.origin)).astype(np.float64)
        else:
            rel = arr.astype(np.float64) - float(self.origin)
        return rel * UNIT_SECONDS[unit]


def _unit_factor(kind: str, unit: str, table: dict[str, float]) -> float:
    if unit not in table:
        raise WireError(f"unknown {kind} unit {unit!r}; choose one of {', '.join(table)}")
    return table[unit]


class BatchScales:
    """Per-channel multipliers for decoded batches, cached per unit pair.

    A batch that names its units (JSON phone apps: m/s², rad/s) overrides the units the user gave; the
    user's ``--acc-lsb``/``--gyro-lsb`` apply only where that unit is ``raw``. The user's pair is checked at
    construction, so bad units fail before anything is read.
    """

    def __init__(self, channels: Sequence[dict[str, str]], acc_unit: str = "g", gyro_unit: str = "rad/s",
                 acc_lsb: float | None = None, gyro_lsb: float | None = None) -> None:
        self.channels = list(channels)
        self.units = (acc_unit, gyro_unit)
        self.lsb = (acc_lsb, gyro_lsb)
        self._cache = {self.units: channel_scales(self.channels, acc_unit, gyro_unit, acc_lsb, gyro_lsb)}

    @property
    def default(self) -> np.ndarray:
        """The scales for the user's own units."""
        return self._cache[self.units]

    def for_units(self, acc_unit: str | None, gyro_unit: str | None) -> np.ndarray:
        """The scales for a batch whose format says ``acc_unit``/``gyro_unit`` (None: the user's)."""
        key = (acc_unit or self.units[0], gyro_unit or self.units[1])
        if key not in self._cache:
            lsb = (self.lsb[0] if key[0] == "raw" else None, self.lsb[1] if key[1] == "raw" else None)
            self._cache[key] = channel_scales(self.channels, key[0], key[1], *lsb)
        return self._cache[key]


def channel_scales(channels: Sequence[dict[str, str]], acc_unit: str = "g", gyro_unit: str = "rad/s",
                   acc_lsb: float | None = None, gyro_lsb: float | None = None) -> np.ndarray:
    """Per-channel multipliers from device units to the units named by ``channels`` (the manifest's).

    ``raw`` means integer sensor counts; ``acc_lsb`` is g per count (MPU6050 at ±2 g: 1/16384) and
    ``gyro_lsb`` deg/s per count (MPU6050 at ±250 dps: 1/131). An lsb given without ``raw`` is an error
    rather than silently ignored.
    """
    for kind, unit, lsb in (("acc", acc_unit, acc_lsb), ("gyro", gyro_unit, gyro_lsb)):
        if lsb is not None and unit != "raw":
            raise WireError(f"--{kind}-lsb only applies with --{kind}-unit raw (got --{kind}-unit {unit})")
        if lsb is not None and not (math.isfinite(lsb) and lsb > 0):
            raise WireError(f"--{kind}-lsb must be a positive number, got {lsb}")
    scales = np.ones(len(channels), dtype=np.float32)
    for i, ch in enumerate(channels):
        name, unit = ch.get("name", ""), ch.get("unit", "")
        if name.startswith("acc"):
            src, lsb, table, kind, raw_unit = acc_unit, acc_lsb, ACC_UNIT_FACTORS, "acc", "g"
        elif name.startswith("gyro"):
            src, lsb, table, kind, raw_unit = gyro_unit, gyro_lsb, GYRO_UNIT_FACTORS, "gyro", "deg/s"
        else:
            continue
        if unit not in table:
            raise WireError(f"bundle channel {name} has unit {unit!r}, which hartool cannot convert to")
        to_model = 1.0 / table[unit]
        if src == "raw":
            if not lsb:
                raise WireError(f"--{kind}-unit raw needs --{kind}-lsb ({raw_unit} per count)")
            scales[i] = lsb * table[raw_unit] * to_model
        else:
            scales[i] = _unit_factor(kind, src, table) * to_model
    return scales
