"""The ingest stage: decoded batches in, samples in seconds and model units out, on the model's grid.

One home for everything between a decoder and a window, shared by `stream`, `record` and `enroll`:

* units: each batch's acc/gyro units (the format's, else the user's ``--acc-unit``/``--gyro-unit``/``*-lsb``)
  scaled to the units the channels name (:class:`hartool.core.timebase.BatchScales`);
* time: the raw device clock's unit (given, or detected from the first timestamps' spacing: batches are
  held until enough arrived), the origin (the first sample, or the earliest sensor of a multi-clock
  batch), 32-bit counter wraps (:class:`~hartool.core.timebase.DeviceClock`) and clock resets;
* layout: sensors on their own clocks (Sensor Logger's ``SensorPart``\\ s) feed the channel groups their
  names say;
* the grid: :class:`~hartool.core.resample.Resampler` puts device-timed samples on the model's rate grid
  and says where a hole restarts it (``GridChunk.restart``); a device without timestamps passes through;
* units again: the first second of samples is judged by :func:`hartool.core.unitcheck.unit_doubts` (m/s²
  sent as g, deg/s sent as rad/s and the reverses); a doubt is a note, or with ``refuse_doubtful_units``
  (the recorder: a file must hold what was sent) a :class:`UnitsError`, unless ``units_confirmed``;
* notes for the user (the detected time unit, unit doubts, a device rate far from the model's),
  queued for :meth:`IngestStage.pop_messages`: library code never prints.

With ``resample=False`` (the recorder) single-clock samples keep their own device times (non-decreasing
seconds; host arrival time when the device sends none) and only multi-clock sources are put on a grid;
``regrid=True`` then puts those own times on the ``rate_hz`` grid too (a recording whose header names a
rate holds rows at that rate, whatever the sender's).

Sans-IO: no port, no clock of its own (arrival times are the batch's ``received_ns``); numpy and core only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .errors import WireError
from .resample import GridChunk, Resampler
from .timebase import BatchScales, ClockResets, DeviceClock
from .unitcheck import CHECK_SAMPLES, G, unit_doubts

__all__ = ["DETECT_SAMPLES", "RATE_TOLERANCE", "Batch", "IngestOptions", "IngestStage", "SensorReadings",
           "UnitsError"]

RATE_TOLERANCE = 0.10  # a device rate this far from the model's is worth a note
DETECT_SAMPLES = 8  # timestamps collected before an automatic time-unit decision
_RATE_SAMPLES = 50  # device timestamps the device rate is measured over (median spacing)
_ARRIVAL_SPAN_S, _ARRIVAL_SAMPLES = 2.0, 20  # what a rate from arrival times is measured over

#: One sensor on its own clock: (name, model channel indices, times in s, values in model units).
SensorReadings = tuple[str, Sequence[int], np.ndarray, np.ndarray]


class SensorPart(Protocol):
    """One sensor's readings on its own clock (``hartool.wire.batch.SensorPart`` has this shape)."""

    name: str
    channels: Sequence[int]
    t: np.ndarray
    values: np.ndarray


class Batch(Protocol):
    """What the stage reads of a decoded batch (``hartool.wire.batch.DecodedBatch`` has this shape)."""

    values: np.ndarray
    t: np.ndarray | None
    dropped: int
    received_ns: int
    time_unit: str | None
    acc_unit: str | None
    gyro_unit: str | None
    breaks: tuple[int, ...]
    parts: Sequence[SensorPart] | None
    layout: tuple[str, ...]

    @property
    def samples(self) -> int: ...


@dataclass(frozen=True)
class IngestOptions:
    """How a device's batches are read: its units and time unit, and what counts as a hole."""

    acc_unit: str = "g"
    gyro_unit: str = "rad/s"
    acc_lsb: float | None = None
    gyro_lsb: float | None = None
    time_unit: str = "auto"
    max_gap_periods: float = 4.0  # a device-time hole longer than this many model periods restarts windows
    units_confirmed: bool = False  # the user vouches for the units: magnitudes are not judged
    refuse_doubtful_units: bool = False  # a unit doubt raises UnitsError instead of being a note


class UnitsError(WireError):
    """The samples' magnitudes contradict the units they are read in (one line naming the option to pass)."""


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
        if span >= _ARRIVAL_SPAN_S and total - self.first[1] >= _ARRIVAL_SAMPLES:
            self.rate = (total - self.first[1]) / span
            return self.rate
        return None


class _SampleTimeline:
    """``resample=False``: each sample at its own time, as non-decreasing seconds since the first sample.

    Device seconds are used as they are. Where they go back, :class:`ClockResets` decides, as it does for
    the resampler: a restart (board reset) continues the time line one nominal period (else one grid period)
    after the last sample; jitter (a sample a little before its predecessor) is written at its predecessor's
    time, so the rest of the recording keeps the device's own times. Without device time, the host arrival
    time is spread back over the nominal period (samples that arrived together).
    """

    def __init__(self, nominal_hz: float | None, grid_hz: float) -> None:
        self.step = 1.0 / nominal_hz if nominal_hz else 0.0
        self.t0 = 0.0
        self.resets = ClockResets(1.0 / (nominal_hz or grid_hz))
        self.last: float | None = None

    def times(self, t_dev: np.ndarray | None, n: int, arrived_s: float, device: bool) -> np.ndarray:
        if not device and self.last is None:
            self.t0 = arrived_s - self.step * (n - 1)
        if device and t_dev is not None:
            t = self.resets.place(t_dev, self.last)
        elif device:  # a batch without stamps in a stamped stream: extrapolate at the nominal rate
            base = self.last if self.last is not None else 0.0
            t = base + self.step * np.arange(1, n + 1)
        else:
            t = (arrived_s - self.t0) - self.step * np.arange(n - 1, -1, -1)
        if self.last is not None:
            t = np.maximum(t, self.last)
        t = np.maximum.accumulate(np.maximum(t, 0.0))
        self.last = float(t[-1])
        return t


class IngestStage:
    """Decoded batches -> :class:`GridChunk`\\ s in model units (see the module docstring).

    ``channels`` are the model's (or the recording's) channel descriptions (``name``, ``unit``), in order;
    ``rate_hz`` the grid's rate. Feed with :meth:`feed` (decoded batches), :meth:`push` (seconds and model
    units) or :meth:`push_parts` (sensors on their own clocks); :meth:`flush` at the end of the input;
    :meth:`gap` where the caller knows samples were lost (a reconnect). Chunks with ``restart`` follow a
    hole: windows must not span it (an empty chunk with ``restart`` marks a hole by itself).
    """

    def __init__(self, channels: Sequence[Mapping[str, str]], rate_hz: float, options: IngestOptions | None = None,
                 *, resample: bool = True, nominal_hz: float | None = None, regrid: bool = False) -> None:
        self.options = opts = options or IngestOptions()
        self.channels = [dict(c) for c in channels]
        self.names = [c["name"] for c in self.channels]
        self.width = len(self.channels)
        self._all = tuple(range(self.width))  # one clock for every channel
        self._acc = tuple(i for i, n in enumerate(self.names) if n.startswith("acc"))
        self._gyro = tuple(i for i, n in enumerate(self.names) if n.startswith("gyro"))
        self.rate_hz = float(rate_hz)
        self.resample = resample
        self.regrid = regrid and not resample
        self.clock = DeviceClock(opts.time_unit)
        self._scales = BatchScales(self.channels, opts.acc_unit, opts.gyro_unit, opts.acc_lsb, opts.gyro_lsb)
        # The user's units equal the model's (the usual case): skip the multiplication for those batches.
        self._unit_scales = self._scales.default if np.all(self._scales.default == 1.0) else None
        self._timeline = None if resample else _SampleTimeline(nominal_hz, rate_hz)
        self.resampler: Resampler | None = None
        self.layout: tuple[str, ...] = ()
        self._held: list[tuple[Batch, object]] = []  # (batch, tag) waiting for the time unit
        self._arrival = _ArrivalRate()
        self._rate_told = False
        self._rate_times: list[np.ndarray] = []  # device times (s) kept until the rate is measured
        self._unit_checked = opts.units_confirmed
        self._first: list[np.ndarray] = []  # converted samples kept until the units are judged
        self._messages: list[str] = []
        self.device_samples = 0  # samples received (for sensors on separate clocks: readings of all of them)
        self.wire_dropped = 0  # samples the batches said were lost before them
        self.gaps = 0  # holes the batches or the caller reported (sequence gaps, reconnects, queue overflow)
        self.time_unit: str | None = None  # unit of the device timestamps in use
        self.time_source: str | None = None  # "device" or "host" (resample=False: decided by the first batch)
        self.measured_rate_hz: float | None = None

    # ------------------------------------------------------------------------------------------------
    def feed(self, batch: Batch, tag: object = None) -> list[GridChunk]:
        """One :class:`~hartool.wire.batch.DecodedBatch`; ``tag`` comes back on its chunks (single clock)."""
        self.wire_dropped += batch.dropped
        if batch.parts is not None:
            return self._parts(batch, tag)
        if batch.values.ndim != 2 or batch.values.shape[1] != self.width:
            raise WireError(f"device sends {batch.values.shape[-1]} channels per sample; "
                            f"{self.width} expected ({', '.join(self.names)})")
        if self._must_hold(batch):
            self._held.append((batch, tag))
            if sum(len(b.t) for b, _ in self._held if b.t is not None) < DETECT_SAMPLES:
                return []
            return self.flush()
        return self._plain(batch, tag)

    def push(self, t_s: np.ndarray | None, values: np.ndarray, tag: object = None) -> list[GridChunk]:
        """Samples in model units with times in seconds (any origin; None: no device time)."""
        values = np.asarray(values)
        self.device_samples += len(values)
        if t_s is None:
            return [GridChunk(None, values, False, tag)] if len(values) else []
        return self._timed(self.clock.seconds(np.asarray(t_s), "s"), values, tag)

    def push_parts(self, parts: Sequence[SensorReadings], layout: Sequence[str]) -> list[GridChunk]:
        """Sensors on their own clocks (times in seconds, any origin; values in model units); ``layout``
        names every sensor the source sends (grid samples wait for all of them)."""
        self.clock.start_at_earliest(t for _n, _i, t, _v in parts)
        self.device_samples += sum(len(t) for _n, _i, t, _v in parts)
        return self._on_grid([(n, i, self.clock.seconds(np.asarray(t), "s"), v) for n, i, t, v in parts], layout)

    def flush(self) -> list[GridChunk]:
        """Decide the time unit from the held batches (or go on without device time if too few) and pass them
        on; call at the end of the input too. Raises :class:`WireError` when the unit cannot be told."""
        held, self._held = self._held, []
        if not held:
            return []
        stamps = [b.t for b, _ in held if b.t is not None]
        if sum(len(t) for t in stamps) >= 3:
            unit = self.clock.resolve(np.concatenate(stamps))
            if self.clock.detected:
                self._say(f"device timestamps are in {unit} (detected from their spacing; --time-unit overrides)")
        out: list[GridChunk] = []
        for batch, tag in held:
            out += self._plain(batch, tag)
        return out

    def gap(self) -> list[GridChunk]:
        """Samples were lost here: the grid restarts. Returns the restart marker for the chunk stream."""
        self.gaps += 1
        if self.resampler is not None:
            self.resampler.restart()
        return [GridChunk(None, np.zeros((0, self.width)), True)]

    def pop_messages(self) -> list[str]:
        """Notes for the user queued since the last call (time unit, units, rates)."""
        out, self._messages = self._messages, []
        return out

    @property
    def dropped(self) -> int:
        """Samples lost before the grid: reported by the batches, or timed backwards."""
        return self.wire_dropped + (self.resampler.backwards if self.resampler is not None else 0)

    @property
    def last_t(self) -> float | None:
        """``resample=False``: the time (s) of the last sample passed on."""
        return self._timeline.last if self._timeline is not None else None

    def counters(self) -> dict[str, int]:
        """Grid counters for a summary: holes, grid samples never produced, backwards, clock resets."""
        r = self.resampler
        own_resets = self._timeline.resets.count if self._timeline is not None else 0  # recorder's own times
        return {"gaps": self.gaps + (r.gaps if r else 0), "gap_samples": r.gap_samples if r else 0,
                "backwards": r.backwards if r else 0, "clock_resets": own_resets + (r.clock_resets if r else 0),
                "overflow": r.overflow if r else 0}

    # ------------------------------------------------------------------------------------------------
    def _say(self, line: str) -> None:
        self._messages.append(line)

    def _must_hold(self, batch: Batch) -> bool:
        if self._held:
            return True  # in order, behind the ones already waiting
        if self._timeline is not None and self.time_source is not None:
            return False  # the recorder decided its clock with the first batch
        return batch.t is not None and batch.time_unit is None and not self.clock.known

    def _values(self, batch: Batch) -> np.ndarray:
        scales = self._scales.for_units(batch.acc_unit, batch.gyro_unit)
        if self._timeline is not None:
            return np.asarray(batch.values, dtype=np.float64) * scales
        return batch.values if scales is self._unit_scales else batch.values * scales

    def _plain(self, batch: Batch, tag: object) -> list[GridChunk]:
        values = self._values(batch)
        self._check_units(values, batch)
        self.device_samples += len(values)
        timed = batch.t is not None and (batch.time_unit is not None or self.clock.known)
        t_s = None
        if timed:
            unit = batch.time_unit or self.clock.unit
            self.time_unit = self.time_unit or unit
            t_s = self.clock.seconds(batch.t, unit)
        if self._timeline is not None:
            return self._record_times(batch, t_s, values, tag)
        if t_s is not None:
            self._tell_device_rate(t_s)
        else:
            self._tell_arrival_rate(batch.received_ns * 1e-9)
        return self._split(batch.breaks, t_s, values, tag)

    def _split(self, breaks: Sequence[int], t_s: np.ndarray | None, values: np.ndarray,
               tag: object) -> list[GridChunk]:
        """Samples were lost before each break: windows restart there instead of spanning the hole."""
        out: list[GridChunk] = []
        prev = 0
        for cut in sorted({b for b in breaks if 0 <= b <= len(values)}) if breaks else ():
            if cut > prev:
                out += self._segment(None if t_s is None else t_s[prev:cut], values[prev:cut], tag)
            out += self.gap()
            prev = cut
        if prev < len(values):
            out += self._segment(None if t_s is None else t_s[prev:], values[prev:], tag)
        return out

    def _segment(self, t_s: np.ndarray | None, values: np.ndarray, tag: object) -> list[GridChunk]:
        if t_s is None:
            return [GridChunk(None, values, False, tag)]
        return self._timed(t_s, values, tag)

    def _timed(self, t_s: np.ndarray, values: np.ndarray, tag: object) -> list[GridChunk]:
        return self._on_grid([("imu", self._all, t_s, values)], ("imu",), tag)

    def _record_times(self, batch: Batch, t_s: np.ndarray | None, values: np.ndarray, tag: object) -> list[GridChunk]:
        assert self._timeline is not None
        if self.time_source is None:
            self.time_source = "device" if t_s is not None else "host"
        if not len(values):
            return []
        device = self.time_source == "device"
        t = self._timeline.times(t_s if device else None, len(values), batch.received_ns * 1e-9, device)
        if not self.regrid or not device:
            # Host arrival times say when bytes came, not when samples were taken: rows keep one per sample.
            return [GridChunk(t, values, False, tag)]
        last = self._timeline.last
        out = self._timed(t, values, tag)
        self._timeline.last = last  # a device clock restart is judged against the samples' own times
        return out

    def _parts(self, batch: Batch, tag: object) -> list[GridChunk]:
        """Sensors on their own clocks: device seconds from the earliest sensor, units, then the grid."""
        scales = self._scales.for_units(batch.acc_unit, batch.gyro_unit)
        unit = batch.time_unit or self.clock.unit or "ns"
        self.time_unit, self.time_source = unit, "device"
        out = self.gap() if batch.breaks else []
        self.device_samples += batch.samples
        self.clock.start_at_earliest(p.t for p in batch.parts)
        parts = [(p.name, p.channels, self.clock.seconds(p.t, unit), np.asarray(p.values) * scales[list(p.channels)])
                 for p in batch.parts]
        if not self._rate_told and parts:
            self._rate_told = True
            self._say(f"aligning {len(batch.layout)} sensor clocks ({', '.join(batch.layout)}) onto "
                      f"{self.rate_hz:g} Hz")
        return out + self._on_grid(parts, batch.layout, tag)

    def _on_grid(self, parts: Sequence[SensorReadings], layout: Sequence[str], tag: object = None) -> list[GridChunk]:
        layout = tuple(layout)
        out: list[GridChunk] = []
        if self.resampler is None or self.layout != layout:
            out += self._new_resampler(self._layout_channels(layout, parts))
        assert self.resampler is not None
        for name, _idx, t, v in parts:
            out += self.resampler.push(name, t, v)
        for chunk in out:
            chunk.tag = tag
        if self._timeline is not None and out and out[-1].t is not None and len(out[-1].t):
            self._timeline.last = float(out[-1].t[-1])
        return out

    def _new_resampler(self, parts: dict[str, tuple[int, ...]]) -> list[GridChunk]:
        marker = [GridChunk(None, np.zeros((0, self.width)), True)] if self.resampler is not None else []
        self.layout = tuple(parts)
        self.resampler = Resampler(self.rate_hz, self.width, parts,
                                   max_gap_s=self.options.max_gap_periods / self.rate_hz)
        return marker

    def _layout_channels(self, layout: tuple[str, ...], parts: Sequence[SensorReadings]) -> dict[str, tuple[int, ...]]:
        # A sensor of the layout missing from this batch feeds the channel group its name says.
        known = {name: tuple(idx) for name, idx, _t, _v in parts}
        return {n: known.get(n, self._gyro if n.startswith("gyro") else self._acc) for n in layout}

    # ------------------------------------------------------------------------------------------------
    def _check_units(self, values: np.ndarray, batch: Batch) -> None:
        """Judge the first ``CHECK_SAMPLES`` samples' magnitudes against the units they are read in, once.

        Units a format names itself (JSON phone apps) are not in doubt; a doubt is a note, or raises
        :class:`UnitsError` with ``refuse_doubtful_units``."""
        if self._unit_checked:
            return
        acc, gyro = list(self._acc), list(self._gyro)
        if len(acc) != 3:
            self._unit_checked = True
            return
        self._first.append(values)
        if sum(len(v) for v in self._first) < CHECK_SAMPLES:
            return
        self._unit_checked = True
        first, self._first = np.concatenate(self._first).astype(np.float64), []
        acc_g = first[:, acc] / (G if self.channels[acc[0]].get("unit") == "m/s2" else 1.0)
        gyro_rad = None
        if len(gyro) == 3:
            gyro_rad = first[:, gyro] * (np.pi / 180 if self.channels[gyro[0]].get("unit") == "deg/s" else 1.0)
        doubts = unit_doubts(acc_g, gyro_rad, None if batch.acc_unit else self.options.acc_unit,
                             None if batch.gyro_unit else self.options.gyro_unit)
        if doubts and self.options.refuse_doubtful_units:
            raise UnitsError(doubts[0].advice())
        for doubt in doubts:
            self._say(f"warning: {doubt.advice()}")

    def _tell_device_rate(self, t_s: np.ndarray) -> None:
        """The device's rate from the median spacing of its first ``_RATE_SAMPLES`` timestamps: robust to
        jitter and to a dropped sample (first-to-last over a window with drops reads low)."""
        if self._rate_told:
            return
        self._rate_times.append(np.asarray(t_s, dtype=np.float64))
        if sum(len(t) for t in self._rate_times) < _RATE_SAMPLES:
            return
        steps = np.diff(np.concatenate(self._rate_times))
        self._rate_times = []
        steps = steps[steps > 0]
        if not len(steps):
            return
        self._rate_told = True
        rate = 1.0 / float(np.median(steps))
        self.measured_rate_hz = rate
        if abs(rate - self.rate_hz) > RATE_TOLERANCE * self.rate_hz:
            self._say(f"device clock: about {rate:.1f} samples/s; resampling to the model's {self.rate_hz:g} Hz")

    def _tell_arrival_rate(self, arrived_s: float) -> None:
        r = self._arrival.update(arrived_s, self.device_samples)
        if r is None:
            return
        self.measured_rate_hz = r
        if abs(r - self.rate_hz) > RATE_TOLERANCE * self.rate_hz:
            self._say(f"warning: device sends about {r:.1f} samples/s, the model was trained at {self.rate_hz:g} Hz: "
                      "predictions will be unreliable (send timestamps, and hartool resamples)")
