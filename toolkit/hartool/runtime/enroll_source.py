"""Where enrollment's samples come from: a live source through `stream`'s own path, or labelled CSV recordings.

Samples arrive on the model's rate grid in model units (the stream's ingest stage) and are cut into
densely overlapping windows through the bundle's input transform (calibration, preprocessing), so what is
enrolled is what `stream` will classify.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.bundle import Bundle
from ..core.errors import BundleError, DataError
from ..core.ingest import IngestStage
from ..core.resample import GridChunk
from ..core.transform import InputTransform
from ..wire.spec import SourceSpec
from .artifacts import load_bundle_predictor
from .backends import Predictor
from .classifier import ClassifierOptions, StreamClassifier
from .heads import FitParams
from .session import run_stream
from .stream import StreamOptions

MIN_SECONDS = 10.0
# Enrollment windows overlap by 7/8: 30 s at 50 Hz give ~180 windows instead of ~22.
ENROLL_STRIDE_DIVISOR = 8
# A labelled CSV this close to the model's rate is taken sample by sample; further off, it is resampled.
_RATE_SLACK = 0.01


@dataclass(frozen=True)
class EnrollOptions:
    """What `hartool enroll` takes besides the bundle."""

    source: SourceSpec
    label: str | None = None
    seconds: float = 30.0
    personalize: bool = False
    replace: bool = False
    artifact: str | None = None
    by: str | None = None
    min_seconds: float = MIN_SECONDS
    # A new activity whose expected recall (held-out half of its recording) is under this is not saved ...
    min_recall: float = 0.5
    force: bool = False  # ... unless forced
    # Live sources: give up after this long without enough samples.
    timeout_s: float | None = None
    params: FitParams = field(default_factory=FitParams)
    # Called as (seconds captured, seconds wanted) at each whole second captured (the CLI shows a countdown).
    on_progress: Callable[[int, int], None] | None = field(default=None, compare=False)


def read_samples(source: SourceSpec, bundle: Bundle, seconds: float, opts: EnrollOptions,
                 loaded: tuple[dict[str, Any], Predictor] | None = None,
                 on_status: Callable[[str], None] | None = None) -> list[np.ndarray]:
    """Up to ``seconds`` of samples on the model's rate grid, in the bundle's units, from any source `stream`
    reads: continuous segments (n_i, C), split where the stream had a hole (gap, reconnect, lost samples).

    The samples take exactly the stream's path: `stream`'s own classifier and ingest stage (units, device
    time and its unit, resampling of any device rate and of sensors on separate clocks onto the model's
    grid), tapped before the windows, so what is enrolled is what `stream` will classify. ``loaded``: the
    (entry, predictor) already loaded by the caller; ``on_status`` gets the stream's status lines.
    """
    entry, pred = loaded or require_embedding(bundle, opts.artifact)
    clf = StreamClassifier(bundle, ClassifierOptions(use_head=False), predictor=pred, entry=entry,
                           ingest=source.ingest())
    collector = _GridCollector(int(round(seconds * bundle.sample_rate_hz)), bundle.sample_rate_hz, opts.on_progress)
    clf.tap = collector.take
    # A live source gets the recording time plus a margin; a file ends by itself.
    sopts = StreamOptions(source, duration_s=opts.timeout_s if opts.timeout_s else 3.0 * seconds + 30.0)
    summary = run_stream(bundle.path, sopts, lambda _p: None, on_status, stop=collector.stop, classifier=clf)
    if summary.end_reason == "error":
        raise DataError(f"{source.port}: {summary.message}")
    return collector.segments()


class _GridCollector:
    """Keeps a stream's grid samples, up to ``want``, in continuous segments (a restart begins a new one)."""

    def __init__(self, want: int, rate_hz: float = 1.0,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        self.want, self.rate_hz, self.on_progress = want, rate_hz, on_progress
        self._told = 0  # whole seconds reported
        self.stop = threading.Event()
        self._done: list[np.ndarray] = []
        self._current: list[np.ndarray] = []
        self.total = 0

    def take(self, chunk: GridChunk) -> None:
        if chunk.restart and self._current:
            # A hole in the stream: windows must not span it, so the samples after it start a new segment.
            self._done.append(np.concatenate(self._current))
            self._current = []
        take = np.asarray(chunk.values[: max(0, self.want - self.total)], dtype=np.float32)
        if len(take):
            self._current.append(take)
            self.total += len(take)
        if self.on_progress is not None:  # every whole second, also those one big chunk (a file) crossed
            for second in range(self._told + 1, int(self.total / self.rate_hz) + 1):
                self.on_progress(second, int(round(self.want / self.rate_hz)))
            self._told = max(self._told, int(self.total / self.rate_hz))
        if self.total >= self.want:
            self.stop.set()

    def segments(self) -> list[np.ndarray]:
        """The continuous stretches collected so far (the last one included)."""
        tail = [np.concatenate(self._current)] if self._current else []
        return self._done + tail


def read_labelled(path: Path, bundle: Bundle) -> list[tuple[str, np.ndarray]]:
    """(label, samples) runs of constant label from a labelled CSV recording or a folder of them, on the
    model's rate grid: a recording at another rate (a 100 Hz phone) is resampled by its ``t_s``."""
    from ..core.csvformat import read_csv_session

    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    runs: list[tuple[str, np.ndarray]] = []
    rate = float(bundle.sample_rate_hz)
    for f in files:
        session = read_csv_session(f)
        labels = np.asarray(session.labels)
        if not len(labels):
            continue
        on_rate = len(labels) < 2 or abs(session.sample_rate_hz() - rate) <= _RATE_SLACK * rate
        edges = np.flatnonzero(labels[1:] != labels[:-1]) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(labels)], strict=True):
            if not labels[lo]:
                continue
            if on_rate:
                runs.append((str(labels[lo]), session.values[lo:hi]))
            else:
                t = np.asarray(session.t_s[lo:hi], dtype=np.float64)
                runs += [(str(labels[lo]), seg) for seg in _on_grid(t - t[0], session.values[lo:hi], bundle)]
    return runs


def _on_grid(t_s: np.ndarray, values: np.ndarray, bundle: Bundle) -> list[np.ndarray]:
    """Linear resampling onto the model's grid (the stream's ingest stage), split where the recording has a hole."""
    stage = IngestStage(bundle.channels, bundle.sample_rate_hz)
    segments: list[list[np.ndarray]] = [[]]
    for chunk in stage.push(t_s, np.asarray(values, dtype=np.float64)):
        if chunk.restart and segments[-1]:
            segments.append([])
        segments[-1].append(chunk.values.astype(np.float32))
    return [np.concatenate(seg) for seg in segments if seg]


def cut_windows(samples: np.ndarray, bundle: Bundle) -> np.ndarray:
    """Model input of densely overlapping windows of one continuous recording, through the bundle's input
    transform (calibrated as the stream is, for `--orientation free` bundles)."""
    return InputTransform(bundle.manifest).windows(samples, max(1, bundle.window // ENROLL_STRIDE_DIVISOR))



def require_embedding(bundle: Bundle, artifact: str | None) -> tuple[dict[str, Any], Predictor]:
    """The bundle's artifact with the embedding output (``artifact``, else the default); BundleError if none."""
    if not (bundle.manifest.get("embedding") or {}).get("artifacts"):
        raise BundleError(f"{bundle.path}: bundle has no embedding output to enroll with; re-run "
                          f"'hartool quantize {bundle.path}' with this hartool version")
    entry, pred = load_bundle_predictor(bundle, artifact)
    if pred.embedding_dim is None:
        raise BundleError(f"{bundle.path}: artifact {entry['name']} has no embedding output; "
                          f"choose one of {', '.join(bundle.manifest['embedding']['artifacts'])} with --artifact")
    return entry, pred
