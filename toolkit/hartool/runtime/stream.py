"""The `hartool stream` driver: a port's bytes -> decoder -> StreamClassifier -> callbacks.

The reader thread (wire/reader.py) is the only owner of the port; this loop takes its batches and feeds
:class:`StreamClassifier`, whose ingest stage (core/ingest.py) turns device time and units into the model's
grid, and which windows and classifies. Everything about models lives there; everything about ports here.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.bundle import Bundle
from ..core.errors import WireError
from ..core.ingest import IngestOptions
from ..core.rss import peak_rss_mb
from ..core.timebase import channel_scales
from ..wire.batch import DecodedBatch, parse_columns
from ..wire.events import ReaderEvent
from ..wire.reader import ReaderThread
from ..wire.sources import open_port

# Artifact choice lives in .artifacts; re-exported here for callers of the old location.
from .artifacts import ARTIFACT_PREFERENCE, choose_artifact, load_bundle_predictor  # noqa: F401
from .classifier import ClassifierOptions, StreamClassifier, WindowPrediction, parse_smooth

__all__ = ["StreamOptions", "StreamSummary", "WindowPrediction", "load_bundle_predictor", "run_stream"]

# With look-ahead smoothing a window waits for later ones. When nothing arrives for the look-ahead's own span
# plus this margin, the sender has stopped (an app closed, a phone out of Wi-Fi): the held windows are
# delivered, judged from what came, instead of waiting for data that may never come. (An app that batches
# longer than that span cuts the look-ahead at every batch.)
_QUIET_RELEASE_S = 2.0


@dataclass(frozen=True)
class StreamOptions:
    """Everything `hartool stream` takes besides the bundle."""

    port: str
    artifact: str | None = None
    backend: str = "auto"
    threads: int = 1
    baud: int = 115200
    protocol: str = "auto"
    smooth: str | int = "none"
    min_confidence: float = 0.0
    reconnect: bool = False
    duration_s: float | None = None
    max_windows: int | None = None
    acc_unit: str = "g"
    gyro_unit: str = "rad/s"
    acc_lsb: float | None = None
    gyro_lsb: float | None = None
    max_queue: int = 1024
    columns: str | None = None
    time_unit: str = "auto"
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


def _prepare(bundle_dir: str | os.PathLike[str], opts: StreamOptions,
             classifier: StreamClassifier | None) -> tuple[StreamClassifier, Any]:
    """Load the model and check every option that can be checked before the port is opened."""
    bundle = classifier.bundle if classifier is not None else Bundle.load(bundle_dir)
    names = [c["name"] for c in bundle.channels]
    columns = parse_columns(opts.columns, names) if opts.columns else None
    channel_scales(bundle.channels, opts.acc_unit, opts.gyro_unit, opts.acc_lsb, opts.gyro_lsb)
    if classifier is not None:
        return classifier, columns
    copts = ClassifierOptions(artifact=opts.artifact, backend=opts.backend, threads=opts.threads,
                              smooth=parse_smooth(opts.smooth), min_confidence=opts.min_confidence)
    iopts = IngestOptions(acc_unit=opts.acc_unit, gyro_unit=opts.gyro_unit, acc_lsb=opts.acc_lsb,
                          gyro_lsb=opts.gyro_lsb, time_unit=opts.time_unit, max_gap_periods=opts.max_gap_periods)
    return StreamClassifier(bundle, copts, ingest=iopts), columns


@dataclass
class _Run:
    """What the loop of one stream shares: the classifier, the options, where windows and status lines go."""

    clf: StreamClassifier
    opts: StreamOptions
    on_window: Callable[[WindowPrediction], None]
    say: Callable[[str], None]
    summary: StreamSummary
    lat: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))


def run_stream(bundle_dir: str | os.PathLike[str], opts: StreamOptions,
               on_window: Callable[[WindowPrediction], None],
               on_status: Callable[[str], None] | None = None,
               stop: threading.Event | None = None,
               classifier: StreamClassifier | None = None) -> StreamSummary:
    """Classify windows from ``opts.port`` until EOF, duration, max windows, ``stop``, Ctrl-C or device loss.

    ``on_window`` is called for every window, in window order (the CLI prints there); e2e latency runs from
    the moment the reader thread received the bytes that let a window be labelled (those completing it, or
    with look-ahead smoothing those completing the window ``lag`` later) to the return of ``on_window``. At
    the end every classified window is delivered, also those a look-ahead smoother still held. ``classifier``
    replaces the one built from the bundle and ``opts`` (its own ingest options then apply; enrollment
    taps its grid samples).
    """
    say = on_status or (lambda _m: None)
    stop = stop or threading.Event()
    clf, columns = _prepare(bundle_dir, opts, classifier)
    run = _Run(clf, opts, on_window, say, StreamSummary(artifact=clf.entry["name"], backend=clf.predictor.backend,
                                                          port=opts.port))
    _say_model(run)
    port = open_port(opts.port, baud=opts.baud, reconnect=opts.reconnect)
    reader = ReaderThread(port, protocol=opts.protocol, expected_channels=clf.channels, max_queue=opts.max_queue,
                          reconnect=opts.reconnect, channel_names=clf.channel_names, columns=columns,
                          time_unit=None if opts.time_unit == "auto" else opts.time_unit)
    say(f"reading {port.name}" + (" (waiting for senders)" if reader.listening else ""))
    attach = getattr(on_window, "attach_live_counters", None)
    if attach is not None:  # sinks (the live page) show the reader's running counters: bad lines, reconnects
        attach(reader.stats)
    reader.start()
    try:
        try:
            _loop(reader, run, stop)
        except KeyboardInterrupt:
            run.summary.end_reason = "interrupted"
        _flush_end(run)
    except KeyboardInterrupt:  # a second Ctrl-C while the last windows are delivered
        run.summary.end_reason = "interrupted"
    finally:
        reader.stop()
    _finish(run, reader)
    return run.summary


def _say_model(run: _Run) -> None:
    clf, b = run.clf, run.clf.bundle
    run.say(f"model {clf.entry['name']} ({clf.entry['file']}, {clf.predictor.backend}, input "
            f"{clf.predictor.input_dtype}); window {b.window} / stride {b.stride} at {b.sample_rate_hz:g} Hz")
    if clf.lag:
        run.say(f"smoothing {run.opts.smooth} looks {clf.lag} windows ahead: each label is shown "
                f"{clf.lag * b.stride / b.sample_rate_hz:.1f} s after its window ends")


def _loop(reader: ReaderThread, run: _Run, stop: threading.Event) -> None:
    opts, clf, summary = run.opts, run.clf, run.summary
    deadline = time.perf_counter() + opts.duration_s if opts.duration_s else None
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
                if _deliver_held(run):
                    return
            continue
        if isinstance(item, ReaderEvent):
            if _event(run, item):
                return
            continue
        last_data = time.perf_counter()
        if _take(run, item):
            stop.set()
            return
    if summary.end_reason == "running":
        summary.end_reason = "stopped"


def _event(run: _Run, item: ReaderEvent) -> bool:
    """A reader event; True when it ends the stream."""
    if item.kind == "reconnected":
        run.summary.reconnects += 1
        run.clf.gap("reconnect")
        if _deliver_held(run):  # what the smoother held at the drop
            return True
    if item.kind == "protocol" or not item.final:
        run.say(item.message)
    if item.final:
        run.summary.end_reason, run.summary.message = item.kind, item.message
        return True
    return False


def _take(run: _Run, batch: DecodedBatch) -> bool:
    """Classify a batch and deliver its windows; True when the stream ends (an error or enough windows)."""
    try:
        preds = run.clf.feed(batch)
    except WireError as exc:  # e.g. the time unit cannot be told: one line, the stream ends
        run.summary.end_reason, run.summary.message = "error", str(exc)
        return True
    if run.opts.max_windows and run.clf.assembler.windows >= run.opts.max_windows:
        preds += run.clf.flush()  # the last window wanted: no waiting for look-ahead that may not come
    return _deliver(run, preds, batch.received_ns)


def _flush_end(run: _Run) -> None:
    """The stream ended: classify the samples still held for the time-unit decision (a very short stream),
    then deliver the windows a look-ahead smoother still holds."""
    if run.summary.end_reason == "max_windows":
        return
    preds: list[WindowPrediction] = []
    if run.summary.end_reason != "error":
        try:
            preds = run.clf.end_of_input()
        except WireError as exc:
            run.summary.end_reason, run.summary.message = "error", str(exc)
    if not _deliver(run, preds, time.perf_counter_ns()):
        _deliver_held(run)


def _deliver_held(run: _Run) -> bool:
    """Deliver now the windows the classifier still holds for a look-ahead smoother (see :func:`_deliver`)."""
    return _deliver(run, run.clf.flush(), time.perf_counter_ns())


def _deliver(run: _Run, preds: list[WindowPrediction], received_ns: int) -> bool:
    """Hand predictions to ``on_window`` and time them; True once ``max_windows`` were delivered."""
    for line in run.clf.pop_messages():  # ingest notes, calibration progress: before the windows they affect
        run.say(line)
    summary, max_windows = run.summary, run.opts.max_windows
    for p in preds:
        run.on_window(p)
        p.e2e_us = (time.perf_counter_ns() - received_ns) / 1000.0
        run.lat[0].append(p.inference_us)
        run.lat[1].append(p.e2e_us)
        summary.windows += 1
        if max_windows and summary.windows >= max_windows:
            summary.end_reason = "max_windows"
            return True
    return False


def _finish(run: _Run, reader: ReaderThread) -> None:
    summary, clf = run.summary, run.clf
    for line in clf.pop_messages():
        run.say(line)
    stats = reader.stats()
    # Losses the reader counted but never attached to a delivered batch (the stream ended first).
    clf.add_dropped(stats.dropped_wire + stats.dropped_queue - clf.ingest.wire_dropped)
    c = clf.counters()
    summary.samples = clf.device_samples
    summary.grid_samples, summary.pending = c["grid_samples"], c["pending"]
    summary.gaps, summary.gap_samples = c["gaps"], c["gap_samples"]
    summary.backwards, summary.clock_resets = c["backwards"], c["clock_resets"]
    summary.time_unit, summary.rate_hz = clf.ingest.time_unit, clf.ingest.measured_rate_hz
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
    summary.inference_us, summary.e2e_us = _percentiles(run.lat[0]), _percentiles(run.lat[1])
    summary.peak_rss_mb = peak_rss_mb()
    if summary.end_reason == "eof" and not summary.message:
        summary.message = "end of input"
