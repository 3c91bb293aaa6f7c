"""The streaming loop: serial bytes -> samples -> sliding windows -> preprocess -> interpreter -> predictions."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.bundle import Bundle
from ..core.errors import BundleError, WireError
from ..core.preprocess import preprocess
from ..core.rss import peak_rss_mb
from ..wire.reader import ReaderEvent, ReaderThread
from ..wire.sources import open_port
from .backends import Predictor, load_predictor
from .smoothing import ProbabilitySmoother
from .units import channel_scales
from .window import WindowAssembler

# Artifacts tried when --artifact is not given: the small, fast, integer ones first.
ARTIFACT_PREFERENCE = ("tflite-int8", "tflite-dynamic", "tflite-fp32", "tflite-fp16", "onnx-fp32", "onnx-int8",
                       "onnx-dynamic", "tflite-int16x8")
RATE_TOLERANCE = 0.10


@dataclass(frozen=True)
class StreamOptions:
    """Everything `hartool stream` takes besides the bundle."""

    port: str
    artifact: str | None = None
    backend: str = "auto"
    threads: int = 1
    baud: int = 115200
    protocol: str = "auto"
    smooth: int = 1
    min_confidence: float = 0.0
    reconnect: bool = False
    duration_s: float | None = None
    max_windows: int | None = None
    acc_unit: str = "g"
    gyro_unit: str = "rad/s"
    acc_lsb: float | None = None
    gyro_lsb: float | None = None
    max_queue: int = 1024


@dataclass
class WindowPrediction:
    """One classified window, as printed (text) or written (JSONL)."""

    window: int
    end_sample: int
    label: str
    confidence: float
    probs: list[float]
    dropped: int
    inference_us: float
    e2e_us: float
    t_s: float
    uncertain: bool

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window, "end_sample": self.end_sample, "label": self.label,
                "confidence": round(self.confidence, 5), "probs": [round(p, 5) for p in self.probs],
                "dropped": self.dropped, "inference_us": round(self.inference_us, 1),
                "e2e_us": round(self.e2e_us, 1), "t": round(self.t_s, 4), "uncertain": self.uncertain}


@dataclass
class StreamSummary:
    """Counters and latency percentiles, printed on exit (Ctrl-C, EOF, duration, disconnect)."""

    artifact: str
    backend: str
    port: str
    samples: int = 0
    windows: int = 0
    pending: int = 0
    bad_lines: int = 0
    bad_frames: int = 0
    header_lines: int = 0
    seq_gaps: int = 0
    dropped: int = 0
    dropped_queue: int = 0
    reconnects: int = 0
    duration_s: float = 0.0
    rate_hz: float | None = None
    protocol: str | None = None
    end_reason: str = "running"
    message: str = ""
    inference_us: dict[str, float] = field(default_factory=dict)
    e2e_us: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float | None = None

    @property
    def failed(self) -> bool:
        return self.end_reason in ("disconnected", "gave_up", "error")


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)),
            "mean": float(arr.mean()), "max": float(arr.max())}


def choose_artifact(bundle: Bundle, name: str | None) -> dict[str, Any]:
    """The named artifact, or the preferred runnable one (int8 TFLite first)."""
    if name:
        return bundle.artifact(name)
    by_name = {a["name"]: a for a in bundle.artifacts}
    for candidate in ARTIFACT_PREFERENCE:
        if candidate in by_name:
            return by_name[candidate]
    runnable = [a for a in bundle.artifacts if a["format"] in ("tflite", "onnx")]
    if not runnable:
        raise BundleError(f"{bundle.path}: no .tflite or .onnx artifact (run 'hartool quantize {bundle.path}')")
    return runnable[0]


def load_bundle_predictor(bundle: Bundle, artifact: str | None, backend: str = "auto",
                          threads: int = 1) -> tuple[dict[str, Any], Predictor]:
    """Pick and load an artifact, checking it against the bundle's window, channels and labels."""
    entry = choose_artifact(bundle, artifact)
    path = bundle.artifact_path(entry)
    pred = load_predictor(path, backend=backend, threads=threads, window=bundle.window,
                          channels=len(bundle.channels), n_classes=len(bundle.labels))
    return entry, pred


class _RateEstimator:
    """Sample rate from device timestamps when present, else from arrival times over >= 2 s."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None
        self.rate: float | None = None

    def update(self, t_ms: np.ndarray | None, arrived_s: float, total: int) -> float | None:
        if self.rate is not None:
            return None
        if t_ms is not None and len(t_ms):
            key = float(t_ms[-1]) / 1000.0
        else:
            key = arrived_s
        if self.first is None:
            self.first = (key, total)
            return None
        span = key - self.first[0]
        if span >= 2.0 and total - self.first[1] >= 20:
            self.rate = (total - self.first[1]) / span
            return self.rate
        return None


def run_stream(bundle_dir: str | os.PathLike[str], opts: StreamOptions,
               on_window: Callable[[WindowPrediction], None],
               on_status: Callable[[str], None] | None = None,
               stop: threading.Event | None = None) -> StreamSummary:
    """Classify windows from ``opts.port`` until EOF, duration, max windows, ``stop``, Ctrl-C or device loss.

    ``on_window`` is called for every window (the CLI prints there); e2e latency runs from the moment the
    reader thread received the bytes completing a window to the return of ``on_window``.
    """
    say = on_status or (lambda _m: None)
    stop = stop or threading.Event()
    bundle = Bundle.load(bundle_dir)
    entry, pred = load_bundle_predictor(bundle, opts.artifact, opts.backend, opts.threads)
    labels, channels = bundle.labels, len(bundle.channels)
    scales = channel_scales(bundle.channels, opts.acc_unit, opts.gyro_unit, opts.acc_lsb, opts.gyro_lsb)
    convert = not np.allclose(scales, 1.0)
    spec = bundle.preprocessing
    summary = StreamSummary(artifact=entry["name"], backend=pred.backend, port=opts.port)
    say(f"model {entry['name']} ({entry['file']}, {pred.backend}, input {pred.input_dtype}); "
        f"window {bundle.window} / stride {bundle.stride} at {bundle.sample_rate_hz:g} Hz")

    port = open_port(opts.port, baud=opts.baud)
    reader = ReaderThread(port, protocol=opts.protocol, expected_channels=channels, max_queue=opts.max_queue,
                          reconnect=opts.reconnect)
    assembler = WindowAssembler(bundle.window, bundle.stride, channels)
    smoother = ProbabilitySmoother(opts.smooth, len(labels))
    model_in = np.empty((1, bundle.window, channels), dtype=np.float32)
    inference: list[float] = []
    e2e: list[float] = []
    rate = _RateEstimator()
    dropped = 0
    started = time.perf_counter()
    deadline = started + opts.duration_s if opts.duration_s else None
    say(f"reading {port.name}")
    reader.start()
    try:
        while not stop.is_set():
            if deadline and time.perf_counter() >= deadline:
                summary.end_reason = "duration"
                break
            try:
                item = reader.get(timeout=0.05)
            except WireError as exc:
                summary.end_reason, summary.message = "error", str(exc)
                break
            if item is None:
                if reader.finished:
                    summary.end_reason = reader.end_reason or "eof"
                    break
                continue
            if isinstance(item, ReaderEvent):
                if item.kind == "reconnected":
                    summary.reconnects += 1
                    dropped += assembler.reset()
                    smoother.reset()
                if item.kind == "protocol" or not item.final:
                    say(item.message)
                if item.final:
                    summary.end_reason, summary.message = item.kind, item.message
                    break
                continue
            received_ns = item.received_ns
            dropped += item.dropped
            values = item.values * scales if convert else item.values
            r = rate.update(item.t_ms, time.perf_counter(), assembler.samples + len(values))
            if r is not None:
                summary.rate_hz = r
                if abs(r - bundle.sample_rate_hz) > RATE_TOLERANCE * bundle.sample_rate_hz:
                    say(f"warning: device sends about {r:.1f} samples/s, the model was trained at "
                        f"{bundle.sample_rate_hz:g} Hz: predictions will be unreliable")
            for index, end, window in assembler.push(values):
                preprocess(window, spec, out=model_in[0])
                t0 = time.perf_counter_ns()
                probs = pred.predict(model_in)[0]
                t1 = time.perf_counter_ns()
                smoothed = smoother.update(probs)
                k = int(smoothed.argmax())
                conf = float(smoothed[k])
                result = WindowPrediction(window=index, end_sample=end, label=labels[k], confidence=conf,
                                          probs=[float(p) for p in smoothed], dropped=dropped,
                                          inference_us=(t1 - t0) / 1000.0, e2e_us=0.0,
                                          t_s=time.perf_counter() - started,
                                          uncertain=conf < opts.min_confidence)
                on_window(result)
                result.e2e_us = (time.perf_counter_ns() - received_ns) / 1000.0
                inference.append(result.inference_us)
                e2e.append(result.e2e_us)
                if opts.max_windows and assembler.windows >= opts.max_windows:
                    stop.set()
                    summary.end_reason = "max_windows"
                    break
        else:
            if summary.end_reason == "running":
                summary.end_reason = "stopped"
    except KeyboardInterrupt:
        summary.end_reason = "interrupted"
    finally:
        reader.stop()
    stats = reader.stats()
    summary.samples = assembler.samples
    summary.windows = assembler.windows
    summary.pending = assembler.pending
    summary.bad_lines, summary.bad_frames = stats.bad_lines, stats.bad_frames
    summary.header_lines, summary.seq_gaps = stats.header_lines, stats.seq_gaps
    summary.dropped, summary.dropped_queue = stats.dropped_wire + stats.dropped_queue, stats.dropped_queue
    summary.reconnects = max(summary.reconnects, stats.reconnects)
    summary.protocol = stats.protocol
    summary.duration_s = time.perf_counter() - started
    summary.inference_us, summary.e2e_us = _percentiles(inference), _percentiles(e2e)
    summary.peak_rss_mb = peak_rss_mb()
    if summary.end_reason == "eof" and not summary.message:
        summary.message = "end of input"
    return summary
