"""A session: one source, the classifier and the sinks, tied together; ``for prediction in session`` is the API.

::

    import hartool

    with hartool.open_session("bundles/cnn", source="/dev/ttyACM0", max_windows=100) as session:
        for p in session:
            print(p.label, p.confidence)
    print(session.summary.windows)

The reader thread (wire/reader.py) owns the port; iterating the session takes its batches, feeds the
classifier, hands each window to the sinks (stdout, JSONL, MQTT, the live page) and then to the caller. A board
that classifies by itself sends prediction messages instead of (or besides) samples: they are labelled with the
bundle's labels (runtime/devicepred.py) and take the same way to the sinks and the caller, marked ``source="device"``.
e2e latency runs from the moment the reader received the bytes that let a window be labelled to the return
of the caller's loop body (the CLI prints there).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from ..core.bundle import Bundle
from ..core.errors import DataError, WireError
from ..core.rss import peak_rss_mb
from ..wire.batch import DevicePrediction
from ..wire.reader import ReaderEvent, ReaderThread
from ..wire.spec import SourceSpec, open_source
from .classifier import ClassifierOptions, StreamClassifier, WindowPrediction, parse_smooth
from .devicepred import DevicePredictions
from .sinks import FanOut, Sink
from .stream import StreamOptions, StreamSummary

__all__ = ["Classifier", "Session", "classify", "open_session", "run_stream"]

# With look-ahead smoothing a window waits for later ones. When nothing arrives for the look-ahead's own span
# plus this margin, the sender has stopped (an app closed, a phone out of Wi-Fi): the held windows are
# delivered, judged from what came, instead of waiting for data that may never come. (An app that batches
# longer than that span cuts the look-ahead at every batch.)
_QUIET_RELEASE_S = 2.0
# A sender quiet this long is told once per quiet spell (a finished simulator, a phone app stopped): the user
# learns why no window comes; `--until-quiet S` ends the stream instead.
QUIET_NOTICE_S = 10.0


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)),
            "mean": float(arr.mean()), "max": float(arr.max())}


def _prepare(bundle_dir: str | os.PathLike[str], opts: StreamOptions,
             classifier: StreamClassifier | None) -> StreamClassifier:
    """Load the model and check every option that can be checked before the port is opened."""
    bundle = classifier.bundle if classifier is not None else Bundle.load(bundle_dir)
    opts.source.check(bundle.channels)
    if classifier is not None:
        return classifier
    copts = ClassifierOptions(artifact=opts.artifact, backend=opts.backend, threads=opts.threads,
                              smooth=parse_smooth(opts.smooth), min_confidence=opts.min_confidence)
    return StreamClassifier(bundle, copts, ingest=opts.source.ingest(opts.max_gap_periods))


class Session:
    """Classify windows from ``opts.source`` until EOF, duration, max windows, :meth:`stop`, Ctrl-C or device loss.

    Iterate it once for the windows, in window order; at the end every classified window comes out, also
    those a look-ahead smoother still held. ``summary`` holds the counters once the iteration ended (or
    :meth:`close` was called). ``sinks`` get every window before the caller does; the session closes them.
    ``classifier`` replaces the one built from the bundle and ``opts`` (enrollment collects grid samples).
    """

    def __init__(self, bundle_dir: str | os.PathLike[str], opts: StreamOptions, *, sinks: Sequence[Sink] = (),
                 on_status: Callable[[str], None] | None = None, classifier: StreamClassifier | None = None,
                 stop: threading.Event | None = None) -> None:
        self.opts = opts
        self.say = on_status or (lambda _m: None)
        self._stop = stop or threading.Event()
        self.fan = sinks if isinstance(sinks, FanOut) else FanOut(sinks)
        self._lat: tuple[list[float], list[float]] = ([], [])
        self._iterated = False
        self._closed = False
        self.sink_counters: dict[str, Any] = {}
        try:
            self.clf = _prepare(bundle_dir, opts, classifier)
            self.device = DevicePredictions(self.clf.bundle.labels, opts.min_confidence, self.clf.started)
            self.summary = StreamSummary(artifact=self.clf.entry["name"], backend=self.clf.predictor.backend,
                                         port=opts.source.port)
            self._say_model()
            self.reader: ReaderThread = open_source(opts.source, self.clf.bundle.channels, max_queue=opts.max_queue)
        except BaseException:
            self.fan.close(None)  # the session drives its sinks: they end with it, also when it cannot start
            raise
        port_name = self.reader.port.name if self.reader.port is not None else opts.source.port
        self.say(f"reading {port_name}" + (" (waiting for senders)" if self.reader.listening else ""))
        self.fan.attach_live_counters(self.reader.stats)  # the live page shows bad lines, reconnects

    # ------------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[WindowPrediction]:
        if self._iterated:
            raise RuntimeError("a session is iterated once")
        self._iterated = True
        self.reader.start()
        try:
            try:
                yield from self._loop()
            except KeyboardInterrupt:
                self.summary.end_reason = "interrupted"
            yield from self._flush_end()
        except KeyboardInterrupt:  # a second Ctrl-C while the last windows are delivered
            self.summary.end_reason = "interrupted"
        finally:
            self.close()

    def stop(self) -> None:
        """End the iteration at the next batch (thread-safe); the held windows still come out."""
        self._stop.set()

    def interrupt(self) -> None:
        """Ctrl-C in the caller's loop body: the stream ends as ``interrupted``; the held windows still come out."""
        if self.summary.end_reason == "running":
            self.summary.end_reason = "interrupted"

    def close(self) -> StreamSummary:
        """Stop reading, fill in the summary and close the sinks (once); returns the summary."""
        if not self._closed:
            self._closed = True
            if self.summary.end_reason == "running":
                self.summary.end_reason = "stopped"
            self.reader.stop()
            self._finish()
            self.sink_counters = self.fan.close(self.summary)
        return self.summary

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------
    def _say_model(self) -> None:
        clf, b = self.clf, self.clf.bundle
        self.say(f"model {clf.entry['name']} ({clf.entry['file']}, {clf.predictor.backend}, input "
                 f"{clf.predictor.input_dtype}); window {b.window} / stride {b.stride} at {b.sample_rate_hz:g} Hz")
        if clf.lag:
            self.say(f"smoothing {self.opts.smooth} looks {clf.lag} windows ahead: each label is shown "
                     f"{clf.lag * b.stride / b.sample_rate_hz:.1f} s after its window ends")

    def _loop(self) -> Iterator[WindowPrediction]:
        opts, clf, summary, reader = self.opts, self.clf, self.summary, self.reader
        deadline = time.perf_counter() + opts.duration_s if opts.duration_s else None
        quiet_s = clf.lag * clf.bundle.stride / clf.rate_hz + _QUIET_RELEASE_S
        last_data = time.perf_counter()
        told = False
        while not self._stop.is_set() and summary.end_reason == "running":
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
                    continue
                idle = time.perf_counter() - last_data
                if clf.holding and idle > quiet_s:  # the sender went quiet
                    yield from self._deliver(clf.flush(), time.perf_counter_ns())
                told = self._quiet(idle, told)
                continue
            if isinstance(item, ReaderEvent):
                yield from self._event(item)
                continue
            last_data, told = time.perf_counter(), False
            if isinstance(item, DevicePrediction):
                yield from self._device(item)
                continue
            yield from self._take(item)
        if summary.end_reason == "running":
            summary.end_reason = "stopped"

    def _quiet(self, idle_s: float, told: bool) -> bool:
        """No sample for ``idle_s``: end the stream after ``until_quiet_s``, or say so once; True once told."""
        until = self.opts.until_quiet_s
        if until is not None and idle_s >= until:
            self.summary.end_reason, self.summary.message = "quiet", f"no samples for {until:g} s"
            return told
        if not told and idle_s >= QUIET_NOTICE_S:
            self.say(f"no samples for {QUIET_NOTICE_S:g} s: the sender is quiet (still listening; Ctrl-C or "
                     "--until-quiet S ends the stream)")
            return True
        return told

    def _event(self, item: ReaderEvent) -> Iterator[WindowPrediction]:
        """A reader event; a final one ends the stream."""
        if item.kind == "reconnected":
            self.summary.reconnects += 1
            self.clf.gap("reconnect")
            yield from self._deliver(self.clf.flush(), time.perf_counter_ns())  # what the smoother held
        if item.kind == "protocol" or not item.final:
            self.say(item.message)
        if item.final and self.summary.end_reason == "running":
            self.summary.end_reason, self.summary.message = item.kind, item.message

    def _take(self, batch: Any) -> Iterator[WindowPrediction]:
        """Classify a batch and deliver its windows (an error ends the stream)."""
        try:
            preds = self.clf.feed(batch)
        except WireError as exc:  # e.g. the time unit cannot be told: one line, the stream ends
            self.summary.end_reason, self.summary.message = "error", str(exc)
            return
        if self.opts.max_windows and self.clf.assembler.windows >= self.opts.max_windows:
            preds += self.clf.flush()  # the last window wanted: no waiting for look-ahead that may not come
        yield from self._deliver(preds, batch.received_ns)

    def _device(self, pred: DevicePrediction) -> Iterator[WindowPrediction]:
        """A board's own prediction: labelled and delivered like a window (refused, counted, if it does not fit)."""
        window = self.device.convert(pred, self.clf.dropped)
        for line in self.device.pop_messages():
            self.say(line)
        if window is not None:
            yield from self._deliver([window], pred.received_ns)

    def _flush_end(self) -> Iterator[WindowPrediction]:
        """The stream ended: classify the samples still held for the time-unit decision (a very short stream),
        then deliver the windows a look-ahead smoother still holds."""
        if self.summary.end_reason == "max_windows":
            return
        preds: list[WindowPrediction] = []
        if self.summary.end_reason != "error":
            try:
                preds = self.clf.end_of_input()
            except WireError as exc:
                self.summary.end_reason, self.summary.message = "error", str(exc)
        yield from self._deliver(preds, time.perf_counter_ns())
        if self.summary.end_reason != "max_windows":
            yield from self._deliver(self.clf.flush(), time.perf_counter_ns())

    def _deliver(self, preds: list[WindowPrediction], received_ns: int) -> Iterator[WindowPrediction]:
        """Hand predictions to the sinks and the caller, and time them; ``max_windows`` ends the stream."""
        for line in self.clf.pop_messages():  # ingest notes, calibration progress: before the windows they affect
            self.say(line)
        summary, max_windows = self.summary, self.opts.max_windows
        for p in preds:
            if max_windows and summary.windows + summary.device_predictions >= max_windows:
                return
            self.fan(p)
            device = p.source == "device"
            if device:
                summary.device_predictions += 1
            else:
                summary.windows += 1
            if max_windows and summary.windows + summary.device_predictions >= max_windows:
                summary.end_reason = "max_windows"
            yield p
            p.e2e_us = (time.perf_counter_ns() - received_ns) / 1000.0
            if not device:  # a board's prediction has no host inference; its latency is the link's
                self._lat[0].append(p.inference_us)
                self._lat[1].append(p.e2e_us)

    def _finish(self) -> None:
        summary, clf, reader = self.summary, self.clf, self.reader
        for line in clf.pop_messages():
            self.say(line)
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
        summary.bad_predictions, summary.refused_predictions = stats.bad_predictions, self.device.refused
        extra = reader.decoder_extra()
        summary.port_counters = reader.port_counters()
        summary.bad_batches = extra.get("bad_batches", 0) + summary.port_counters.get("bad_batches", 0)
        summary.unknown_sensors = extra.get("unknown_sensors", 0)
        summary.duration_s = time.perf_counter() - clf.started
        summary.inference_us, summary.e2e_us = _percentiles(self._lat[0]), _percentiles(self._lat[1])
        summary.peak_rss_mb = peak_rss_mb()
        if summary.end_reason == "eof" and not summary.message:
            summary.message = "end of input"


def run_stream(bundle_dir: str | os.PathLike[str], opts: StreamOptions,
               on_window: Callable[[WindowPrediction], None],
               on_status: Callable[[str], None] | None = None,
               stop: threading.Event | None = None,
               classifier: StreamClassifier | None = None,
               sinks: Sequence[Sink] = ()) -> StreamSummary:
    """Classify windows from ``opts.source`` until EOF, duration, max windows, ``stop``, Ctrl-C or device loss.

    A callback form of :class:`hartool.runtime.session.Session`: ``on_window`` is called for every window,
    in window order, after the ``sinks``. A Ctrl-C while ``on_window`` runs ends the stream like one while
    reading does: the windows a look-ahead smoother still holds are delivered (a second one ends at once).
    """
    session = Session(bundle_dir, opts, sinks=sinks, on_status=on_status, classifier=classifier, stop=stop)
    windows = iter(session)
    try:
        for p in windows:
            on_window(p)
    except KeyboardInterrupt:
        session.interrupt()
        try:
            for p in windows:
                on_window(p)
        except KeyboardInterrupt:
            pass
    return session.close()


class Classifier:
    """One-off use: classify windows you already hold (model units, ``(window, channels)``), no port.

    Each window stands alone (no smoothing, no stream around it); the bundle's enrolled head and, for
    ``--orientation free`` bundles, the causal calibration (fed by the windows in call order) apply as in
    a stream. ``labels`` are the answers it can give.
    """

    def __init__(self, bundle: str | os.PathLike[str], artifact: str | None = None, backend: str = "auto",
                 threads: int = 1) -> None:
        self._clf = StreamClassifier(bundle, ClassifierOptions(artifact=artifact, backend=backend, threads=threads,
                                                               smooth="none"))
        self.bundle = self._clf.bundle
        self.labels = list(self._clf.labels)

    def classify(self, window: Any) -> WindowPrediction:
        """The prediction for one window (raises DataError when its shape is not the bundle's)."""
        w = np.asarray(window, dtype=np.float32)
        want = (self.bundle.window, len(self.bundle.channels))
        if w.shape != want:
            raise DataError(f"a window is {want[0]} samples x {want[1]} channels, got shape {w.shape}")
        self._clf.gap("one-off window")  # nothing before this window belongs to it
        (pred,) = self._clf.push(None, w)
        pred.dropped = 0  # the samples the restart cut were the previous window's, not lost ones
        return pred


def classify(bundle_or_classifier: str | os.PathLike[str] | Classifier, window: Any) -> WindowPrediction:
    """Classify one window with a :class:`Classifier` (or the bundle at that path, loaded for this call)."""
    clf = bundle_or_classifier if isinstance(bundle_or_classifier, Classifier) else Classifier(bundle_or_classifier)
    return clf.classify(window)


_OPTION_NAMES = frozenset(f.name for f in fields(StreamOptions)) - {"source"}


def open_session(bundle: str | os.PathLike[str], source: str | SourceSpec, *, sinks: Sequence[Sink] = (),
                 on_status: Callable[[str], None] | None = None, **options: Any) -> Session:
    """Open a session on ``bundle`` reading ``source`` (a ``--port`` value or a :class:`SourceSpec`).

    ``options`` are :class:`hartool.runtime.stream.StreamOptions` fields (``artifact``, ``smooth``,
    ``max_windows``, ``duration_s``, ...); ``sinks`` get every window; ``on_status`` every status line.
    Everything that can be checked is checked here (one-line :class:`hartool.core.errors.HartoolError`).
    """
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise TypeError(f"open_session() got unknown options: {', '.join(unknown)}")
    spec = source if isinstance(source, SourceSpec) else SourceSpec(str(source))
    return Session(bundle, StreamOptions(spec, **options), sinks=sinks, on_status=on_status)
