"""What a stream is asked for (:class:`StreamOptions`) and what it reports (:class:`StreamSummary`).

The loop that runs a stream is :class:`hartool.runtime.session.Session`: the reader thread (wire/reader.py)
owns the port, :class:`StreamClassifier` and its ingest stage (core/ingest.py) turn the batches into windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..wire.spec import SourceSpec
from .classifier import WindowPrediction
from .smoothing import DEFAULT_SMOOTHING

__all__ = ["StreamOptions", "StreamSummary", "WindowPrediction"]


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
    until_quiet_s: float | None = None  # end the stream ("quiet") after this many seconds without samples
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
    # A board that classifies by itself: its prediction messages shown, malformed (counted, skipped) and
    # refused (a class count other than the bundle's).
    device_predictions: int = 0
    bad_predictions: int = 0
    refused_predictions: int = 0

    @property
    def failed(self) -> bool:
        return self.end_reason in ("disconnected", "gave_up", "error")
