"""The `hartool stream` driver: a port's bytes -> decoder -> device time & units -> StreamClassifier -> callbacks.

The reader thread (wire/reader.py) is the only owner of the port; this loop takes its batches, turns
device times into seconds (core/timebase.py), converts units, and feeds :class:`StreamClassifier`, which
resamples, windows and classifies. Everything about models lives there; everything about ports here.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..core.bundle import Bundle
from ..core.errors import WireError
from ..core.rss import peak_rss_mb
from ..core.timebase import BatchScales, DeviceClock
from ..wire.codec import DecodedBatch
from ..wire.reader import ReaderEvent, ReaderThread
from ..wire.spec import SourceSpec, open_source
from .classifier import ClassifierOptions, StreamClassifier, WindowPrediction, parse_smooth
from .smoothing import DEFAULT_SMOOTHING

__all__ = ["StreamOptions", "StreamSummary", "WindowPrediction", "run_stream"]

RATE_TOLERANCE = 0.10
_DETECT_SAMPLES = 8  # timestamps collected before an automatic time-unit decision
_UNIT_CHECK_SAMPLES = 20  # samples the m/s2-sent-as-g check looks at
# With look-ahead smoothing a window waits for later ones. When nothing arrives for the look-ahead's own span
# plus this margin, the sender has stopped (an app closed, a phone out of Wi-Fi): the held windows are
# delivered, judged from what came, instead of waiting for data that may never come. (An app that batches
# longer than that span cuts the look-ahead at every batch.)
_QUIET_RELEASE_S = 2.0


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


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)),
            "mean": float(arr.mean()), "max": float(arr.max())}


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


def _prepare(bundle_dir: str | os.PathLike[str], opts: StreamOptions,
             classifier: StreamClassifier | None) -> StreamClassifier:
    """Load the model and check every option that can be checked before the port is opened."""
    bundle = classifier.bundle if classifier is not None else Bundle.load(bundle_dir)
    opts.source.check(bundle.channels)
    if classifier is not None:
        return classifier
    copts = ClassifierOptions(artifact=opts.artifact, backend=opts.backend, threads=opts.threads,
                              smooth=parse_smooth(opts.smooth), min_confidence=opts.min_confidence,
                              max_gap_periods=opts.max_gap_periods)
    return StreamClassifier(bundle, copts)


def run_stream(bundle_dir: str | os.PathLike[str], opts: StreamOptions,
               on_window: Callable[[WindowPrediction], None],
               on_status: Callable[[str], None] | None = None,
               stop: threading.Event | None = None,
               classifier: StreamClassifier | None = None) -> StreamSummary:
    """Classify windows from ``opts.source`` until EOF, duration, max windows, ``stop``, Ctrl-C or device loss.

    ``on_window`` is called for every window, in window order (the CLI prints there); e2e latency runs from
    the moment the reader thread received the bytes that let a window be labelled (those completing it, or
    with look-ahead smoothing those completing the window ``lag`` later) to the return of ``on_window``. At
    the end every classified window is delivered, also those a look-ahead smoother still held. ``classifier``
    replaces the one built from the bundle and ``opts`` (enrollment feeds a grid-sample collector).
    """
    say = on_status or (lambda _m: None)
    stop = stop or threading.Event()
    clf = _prepare(bundle_dir, opts, classifier)
    b = clf.bundle
    summary = StreamSummary(artifact=clf.entry["name"], backend=clf.predictor.backend, port=opts.source.port)
    say(f"model {clf.entry['name']} ({clf.entry['file']}, {clf.predictor.backend}, input "
        f"{clf.predictor.input_dtype}); window {b.window} / stride {b.stride} at {b.sample_rate_hz:g} Hz")
    if clf.lag:
        say(f"smoothing {opts.smooth} looks {clf.lag} windows ahead: each label is shown "
            f"{clf.lag * b.stride / b.sample_rate_hz:.1f} s after its window ends")
    reader = open_source(opts.source, clf.bundle.channels, max_queue=opts.max_queue)
    feeder = _Feeder(clf, opts, say, summary)
    lat: tuple[list[float], list[float]] = ([], [])
    port_name = reader.port.name if reader.port is not None else opts.source.port
    say(f"reading {port_name}" + (" (waiting for senders)" if reader.listening else ""))
    attach = getattr(on_window, "attach_live_counters", None)
    if attach is not None:  # sinks (the live page) show the reader's running counters: bad lines, reconnects
        attach(reader.stats)
    reader.start()
    try:
        try:
            _loop(reader, feeder, opts, on_window, say, stop, summary, lat)
        except KeyboardInterrupt:
            summary.end_reason = "interrupted"
        _flush_end(feeder, opts, on_window, summary, lat)
    except KeyboardInterrupt:  # a second Ctrl-C while the last windows are delivered
        summary.end_reason = "interrupted"
    finally:
        reader.stop()
    _finish(summary, clf, reader, feeder, lat)
    return summary


def _loop(reader: ReaderThread, feeder: _Feeder, opts: StreamOptions, on_window: Callable[[WindowPrediction], None],
          say: Callable[[str], None], stop: threading.Event, summary: StreamSummary,
          lat: tuple[list[float], list[float]]) -> None:
    deadline = time.perf_counter() + opts.duration_s if opts.duration_s else None
    clf = feeder.clf
    quiet_s = clf.lag * clf.bundle.stride / clf.rate_hz + _QUIET_RELEASE_S
    last_data = time.perf_counter()
    while not stop.is_set():
        if deadline and time.perf_counter() >= deadline:
            summary.end_reason = "duration"
            return
        try:
            item = reader.get(timeout=0.05)
        except WireError as exc:
            summary.end_reason, summary.message = "error", str(exc)
            return
        if item is None:
            if reader.finished:
                summary.end_reason = reader.end_reason or "eof"
                return
            if clf.holding and time.perf_counter() - last_data > quiet_s:  # the sender went quiet
                if _deliver_held(feeder, on_window, opts, summary, lat):
                    return
            continue
        if isinstance(item, ReaderEvent):
            if item.kind == "reconnected":
                summary.reconnects += 1
                clf.gap("reconnect")
                if _deliver_held(feeder, on_window, opts, summary, lat):  # what the smoother held at the drop
                    return
            if item.kind == "protocol" or not item.final:
                say(item.message)
            if item.final:
                summary.end_reason, summary.message = item.kind, item.message
                return
            continue
        last_data = time.perf_counter()
        try:
            preds = feeder.feed(item)
        except WireError as exc:  # e.g. the time unit cannot be told: one line, the stream ends
            summary.end_reason, summary.message = "error", str(exc)
            return
        if opts.max_windows and clf.assembler.windows >= opts.max_windows:
            preds += clf.flush()  # the last window wanted: no waiting for look-ahead that may not come
        if _deliver(preds, feeder, on_window, opts, summary, lat, item.received_ns):
            stop.set()
            return
    if summary.end_reason == "running":
        summary.end_reason = "stopped"


def _flush_end(feeder: _Feeder, opts: StreamOptions, on_window: Callable[[WindowPrediction], None],
               summary: StreamSummary, lat: tuple[list[float], list[float]]) -> None:
    """The stream ended: push the samples still held for the time-unit decision (a very short stream), then
    deliver the windows a look-ahead smoother still holds."""
    if summary.end_reason == "max_windows":
        return
    preds: list[WindowPrediction] = []
    if summary.end_reason != "error":
        try:
            preds = feeder.flush()
        except WireError as exc:
            summary.end_reason, summary.message = "error", str(exc)
    if not _deliver(preds, feeder, on_window, opts, summary, lat, time.perf_counter_ns()):
        _deliver_held(feeder, on_window, opts, summary, lat)


def _deliver_held(feeder: _Feeder, on_window: Callable[[WindowPrediction], None], opts: StreamOptions,
                  summary: StreamSummary, lat: tuple[list[float], list[float]]) -> bool:
    """Deliver now the windows the classifier still holds for a look-ahead smoother (see :func:`_deliver`)."""
    return _deliver(feeder.clf.flush(), feeder, on_window, opts, summary, lat, time.perf_counter_ns())


def _deliver(preds: list[WindowPrediction], feeder: _Feeder, on_window: Callable[[WindowPrediction], None],
             opts: StreamOptions, summary: StreamSummary, lat: tuple[list[float], list[float]],
             received_ns: int) -> bool:
    """Hand predictions to ``on_window`` and time them; True once ``max_windows`` were delivered."""
    for line in feeder.clf.pop_messages():  # orientation calibration progress, before the windows it affects
        feeder.say(line)
    for p in preds:
        on_window(p)
        p.e2e_us = (time.perf_counter_ns() - received_ns) / 1000.0
        lat[0].append(p.inference_us)
        lat[1].append(p.e2e_us)
        summary.windows += 1
        if opts.max_windows and summary.windows >= opts.max_windows:
            summary.end_reason = "max_windows"
            return True
    return False


def _finish(summary: StreamSummary, clf: StreamClassifier, reader: ReaderThread, feeder: _Feeder,
            lat: tuple[list[float], list[float]]) -> None:
    stats = reader.stats()
    # Losses the reader counted but never attached to a delivered batch (the stream ended first).
    clf.add_dropped(stats.dropped_wire + stats.dropped_queue - feeder.delivered_drops)
    c = clf.counters()
    summary.samples = clf.device_samples
    summary.grid_samples, summary.pending = c["grid_samples"], c["pending"]
    summary.gaps, summary.gap_samples = c["gaps"], c["gap_samples"]
    summary.backwards, summary.clock_resets = c["backwards"], c["clock_resets"]
    summary.bad_lines, summary.bad_frames = stats.bad_lines, stats.bad_frames
    summary.header_lines, summary.seq_gaps = stats.header_lines, stats.seq_gaps
    summary.dropped, summary.dropped_queue = clf.dropped, stats.dropped_queue
    summary.reconnects = max(summary.reconnects, stats.reconnects)
    summary.protocol = stats.protocol
    extra = reader.decoder_extra()
    summary.port_counters = reader.port_counters()
    summary.bad_batches = extra.get("bad_batches", 0) + summary.port_counters.get("bad_batches", 0)
    summary.unknown_sensors = extra.get("unknown_sensors", 0)
    summary.duration_s = time.perf_counter() - clf.started
    summary.inference_us, summary.e2e_us = _percentiles(lat[0]), _percentiles(lat[1])
    summary.peak_rss_mb = peak_rss_mb()
    if summary.end_reason == "eof" and not summary.message:
        summary.message = "end of input"
