"""What a stream is asked for (:class:`StreamOptions`) and reports (:class:`StreamSummary`), and the feeder that
turns a port's decoded batches into seconds and model units for :class:`StreamClassifier`.

The loop that drives them is :class:`hartool.runtime.session.Session`; everything about models lives in
the classifier, everything about ports in ``wire``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..core.timebase import BatchScales, DeviceClock
from ..wire.codec import DecodedBatch
from ..wire.spec import SourceSpec
from .classifier import StreamClassifier, WindowPrediction
from .smoothing import DEFAULT_SMOOTHING

__all__ = ["StreamOptions", "StreamSummary", "WindowPrediction"]

RATE_TOLERANCE = 0.10
_DETECT_SAMPLES = 8  # timestamps collected before an automatic time-unit decision
_UNIT_CHECK_SAMPLES = 20  # samples the m/s2-sent-as-g check looks at


@dataclass(frozen=True)
class StreamOptions:
    """Everything `hartool stream` takes besides the bundle."""

    source: SourceSpec
    artifact: str | None = None
    backend: str = "auto"
    threads: int = 1
    smooth: str | int = DEFAULT_SMOOTHING
    min_confidence: float = 0.0
    duration_s: float | None = None
    max_windows: int | None = None
    max_queue: int = 1024
    max_gap_periods: float = 4.0


@dataclass
class StreamSummary:
    """Counters and latency percentiles, printed on exit (Ctrl-C, EOF, duration, disconnect).

    ``samples`` are device samples received (for sensors on separate clocks: readings of all of them);
    ``grid_samples`` what reached the window assembler at the model's rate (equal without device time).
    Every grid sample is in a window, ``pending``, or counted in ``dropped``, which also holds what the
    wire and the queue lost and samples whose timestamps went ``backwards``.
    """

    artifact: str
    backend: str
    port: str
    samples: int = 0
    grid_samples: int = 0
    windows: int = 0
    pending: int = 0
    bad_lines: int = 0
    bad_frames: int = 0
    bad_batches: int = 0
    header_lines: int = 0
    unknown_sensors: int = 0
    seq_gaps: int = 0
    gaps: int = 0
    gap_samples: int = 0
    backwards: int = 0
    clock_resets: int = 0
    dropped: int = 0
    dropped_queue: int = 0
    reconnects: int = 0
    duration_s: float = 0.0
    rate_hz: float | None = None
    time_unit: str | None = None
    protocol: str | None = None
    end_reason: str = "running"
    message: str = ""
    inference_us: dict[str, float] = field(default_factory=dict)
    e2e_us: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    port_counters: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.end_reason in ("disconnected", "gave_up", "error")


class _ArrivalRate:
    """Sample rate from arrival times over >= 2 s (devices without timestamps)."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None
        self.rate: float | None = None

    def update(self, arrived_s: float, total: int) -> float | None:
        if self.rate is not None:
            return None
        if self.first is None:
            self.first = (arrived_s, total)
            return None
        span = arrived_s - self.first[0]
        if span >= 2.0 and total - self.first[1] >= 20:
            self.rate = (total - self.first[1]) / span
            return self.rate
        return None


class _Feeder:
    """Turns decoded batches into classifier pushes: units, device time (with auto unit), gaps, rates."""

    def __init__(self, clf: StreamClassifier, opts: StreamOptions, say: Callable[[str], None],
                 summary: StreamSummary) -> None:
        self.clf, self.opts, self.say, self.summary = clf, opts, say, summary
        src = opts.source
        self.clock = DeviceClock(src.time_unit)
        self._scales = BatchScales(clf.bundle.channels, src.acc_unit, src.gyro_unit, src.acc_lsb, src.gyro_lsb)
        # The user's units equal the model's (the usual case): skip the multiplication for those batches.
        self._unit_scales = self._scales.default if np.all(self._scales.default == 1.0) else None
        self._held: list[DecodedBatch] = []  # timestamped batches waiting for the time unit
        self._arrival = _ArrivalRate()
        self._rate_told = False
        self._unit_checked = False
        self._first: list[np.ndarray] = []  # converted samples kept until the acceleration unit is judged
        self.delivered_drops = 0

    def scales(self, batch: DecodedBatch) -> np.ndarray:
        return self._scales.for_units(batch.acc_unit, batch.gyro_unit)

    def feed(self, batch: DecodedBatch) -> list[WindowPrediction]:
        self.clf.add_dropped(batch.dropped)
        self.delivered_drops += batch.dropped
        if batch.parts is not None:
            return self._parts(batch)
        if batch.t is not None and batch.time_unit is None and not self.clock.known:
            self._held.append(batch)
            if sum(len(b.t) for b in self._held) < _DETECT_SAMPLES:  # type: ignore[arg-type]
                return []
            return self.flush()
        return self._plain(batch)

    def flush(self) -> list[WindowPrediction]:
        """Decide the time unit from the held batches (or give up on times if too few) and push them."""
        held, self._held = self._held, []
        if not held:
            return []
        t = np.concatenate([b.t for b in held])  # type: ignore[misc]
        if len(t) >= 3:
            unit = self.clock.resolve(t)
            self.summary.time_unit = unit
            if self.clock.detected:
                self.say(f"device timestamps are in {unit} (detected from their spacing; --time-unit overrides)")
        out: list[WindowPrediction] = []
        for b in held:
            if not self.clock.known:
                b.t = None
            out += self._plain(b)
        return out

    def _check_acc_unit(self, values: np.ndarray) -> None:
        """Tell once when the converted acceleration is ~9.8 g at rest: m/s2 sent as g (phones do).

        Judged on the first ``_UNIT_CHECK_SAMPLES`` samples, however many batches they came in."""
        if self._unit_checked:
            return
        acc = [i for i, n in enumerate(self.clf.channel_names) if n.startswith("acc")]
        if len(acc) != 3:
            self._unit_checked = True
            return
        self._first.append(values)
        if sum(len(v) for v in self._first) < _UNIT_CHECK_SAMPLES:
            return
        self._unit_checked = True
        first, self._first = np.concatenate(self._first), []
        g = float(np.median(np.linalg.norm(first[:, acc], axis=1)))
        unit = self.clf.bundle.channels[acc[0]].get("unit")
        if unit == "g" and 7.0 < g < 13.0:
            self.say(f"warning: acceleration magnitude is about {g:.1f} g at rest: the device probably sends m/s2 "
                     "(use --acc-unit m/s2)")

    def _plain(self, batch: DecodedBatch) -> list[WindowPrediction]:
        scales = self.scales(batch)
        values = batch.values if scales is self._unit_scales else batch.values * scales
        self._check_acc_unit(values)
        t_s = None
        if batch.t is not None:
            unit = batch.time_unit or self.clock.unit
            self.summary.time_unit = self.summary.time_unit or unit
            t_s = self.clock.seconds(batch.t, unit)
            self._tell_device_rate(t_s)
        else:
            self._tell_arrival_rate(len(values))
        out: list[WindowPrediction] = []
        prev = 0
        # Samples were lost before each break: windows restart there instead of spanning the hole.
        for cut in sorted({b for b in batch.breaks if 0 <= b <= len(values)}) if batch.breaks else ():
            if cut > prev:
                out += self.clf.push(None if t_s is None else t_s[prev:cut], values[prev:cut])
            self.clf.gap("sequence gap")
            prev = cut
        if prev < len(values):
            out += self.clf.push(None if t_s is None else t_s[prev:], values[prev:])
        return out

    def _parts(self, batch: DecodedBatch) -> list[WindowPrediction]:
        scales = self.scales(batch)
        unit = batch.time_unit or self.clock.unit or "ns"
        self.summary.time_unit = unit
        assert batch.parts is not None
        if batch.breaks:
            self.clf.gap("queue overflow")
        if self.clock.origin is None:
            firsts = [p.t[0] for p in batch.parts if len(p.t)]
            self.clock.set_origin(min(firsts))
        parts = [(p.name, p.channels, self.clock.seconds(p.t, unit), p.values * scales[list(p.channels)])
                 for p in batch.parts]
        if not self._rate_told and parts:
            self._rate_told = True
            self.say(f"aligning {len(batch.layout)} sensor clocks ({', '.join(batch.layout)}) onto "
                     f"{self.clf.rate_hz:g} Hz")
        return self.clf.push_parts(parts, batch.layout)

    def _tell_device_rate(self, t_s: np.ndarray) -> None:
        if self._rate_told or len(t_s) < 2 or t_s[-1] <= t_s[0]:
            return
        self._rate_told = True
        rate = (len(t_s) - 1) / float(t_s[-1] - t_s[0])
        self.summary.rate_hz = rate
        model = self.clf.rate_hz
        if abs(rate - model) > RATE_TOLERANCE * model:
            self.say(f"device clock: about {rate:.1f} samples/s; resampling to the model's {model:g} Hz")

    def _tell_arrival_rate(self, n: int) -> None:
        r = self._arrival.update(time.perf_counter(), self.clf.device_samples + n)
        if r is None:
            return
        self.summary.rate_hz = r
        model = self.clf.rate_hz
        if abs(r - model) > RATE_TOLERANCE * model:
            self.say(f"warning: device sends about {r:.1f} samples/s, the model was trained at {model:g} Hz: "
                     "predictions will be unreliable (send timestamps, and hartool resamples)")
