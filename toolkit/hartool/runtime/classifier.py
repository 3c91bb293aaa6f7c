"""The transport-free streaming core: decoded batches (or timed samples) in, window predictions out.

``StreamClassifier(bundle, options)`` owns the ingest stage (:mod:`hartool.core.ingest`: units, device
time, sensor clocks -> the model's rate grid), the window assembler, the bundle's input transform
(:mod:`hartool.core.transform`: calibration, preprocessing), the interpreter, the optional enrolled head
and the smoother. It knows nothing about ports: `hartool stream` (runtime/stream.py), the demo, tests and
benchmarks feed it.

Accounting: every sample that reaches the window assembler ends in a window, is still pending, or is
counted in ``dropped`` (lost when windows restart at a gap or reconnect); the driver adds what the wire
lost (:meth:`StreamClassifier.add_dropped`), so a window's ``dropped`` and the summary's agree.

Predictions come out in window order. A look-ahead smoother (``hmm:...,lag=L``) holds a window's
prediction until L more windows are classified; a gap, a reconnect or :meth:`StreamClassifier.flush` (end
of stream) releases the held ones, judged from the windows there are, so every window is delivered once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.bundle import Bundle
from ..core.errors import HartoolError
from ..core.ingest import Batch, IngestOptions, IngestStage, SensorReadings
from ..core.orientation import StillBouts, reads_imu
from ..core.resample import GridChunk
from ..core.transform import InputTransform
from .artifacts import load_bundle_predictor
from .backends import Predictor
from .heads import load_head
from .smoothing import Smoother, make_smoother
from .window import WindowAssembler

__all__ = ["ClassifierOptions", "StreamClassifier", "WindowPrediction", "parse_smooth"]


@dataclass
class WindowPrediction:
    """One classified window, as printed (text) or written (JSONL).

    ``label``/``confidence``/``probs`` are after smoothing (``smoothed``); ``raw_probs``/``raw_label`` are
    the window's own (after the enrolled head, if any). ``t_end_s`` is the device time of the window's last
    sample in seconds since the stream's first sample (sample index / rate without device time); ``t_s``
    is host time since the stream started. ``dropped`` is the stream's running count of lost samples.
    ``lag`` is how many later windows the smoothed label waited for (0 unless the smoother looks ahead).
    ``source`` is ``host`` for windows classified here, ``device`` for a board's own prediction messages
    (runtime/devicepred.py: ``window`` is then the board's counter and ``t_end_s`` its clock).
    """

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
    t_end_s: float = 0.0
    raw_probs: list[float] = field(default_factory=list)
    raw_label: str = ""
    head: str = "model"
    labels: list[str] | None = None  # the label list of ``probs`` when an enrolled head extends it
    lag: int = 0
    # False while a `free` bundle's stream has no upright reference yet: the label is a best guess.
    calibrated: bool = True
    source: str = "host"

    @property
    def smoothed(self) -> tuple[str, list[float]]:
        return self.label, self.probs

    def to_json(self) -> dict[str, Any]:
        doc = {"window": self.window, "end_sample": self.end_sample, "t_end_s": round(self.t_end_s, 4),
               "label": self.label, "confidence": round(self.confidence, 5),
               "probs": [round(p, 5) for p in self.probs], "raw_label": self.raw_label,
               "raw_probs": [round(p, 5) for p in self.raw_probs], "head": self.head,
               "dropped": self.dropped, "inference_us": round(self.inference_us, 1),
               "e2e_us": round(self.e2e_us, 1), "t": round(self.t_s, 4), "uncertain": self.uncertain,
               "lag": self.lag, "calibrated": self.calibrated, "source": self.source}
        if self.labels is not None:
            doc["labels"] = self.labels
        return doc


@dataclass(frozen=True)
class ClassifierOptions:
    """How a stream is classified (the port-independent part of `hartool stream`'s options)."""

    artifact: str | None = None
    backend: str = "auto"
    threads: int = 1
    smooth: str = "none"
    min_confidence: float = 0.0
    use_head: bool = True


def parse_smooth(value: str | int | None) -> str:
    """``--smooth`` as a METHOD string: an integer K means ``mean:K`` (K <= 1: none). ValueError if bad."""
    if value is None:
        return "none"
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        k = int(text)
        if k < 0:
            raise ValueError(f"smoothing window must be >= 0, got {k}")
        return "none" if k <= 1 else f"mean:{k}"
    make_smoother(text, 2)  # validates the method and its parameters now, not at the first window
    return text


class StreamClassifier:
    """Ingest -> windows -> input transform -> interpreter -> [enrolled head] -> smoothing.

    :meth:`feed` takes decoded batches (units and device time as the ``ingest`` options say); :meth:`push`
    takes ``t_s`` device times in seconds (any origin; None when the device sends none) and ``values``
    (n, channels) in the model's units; :meth:`push_parts` sensors on separate clocks. ``tap``, when set,
    is given every grid chunk (model units, on the model's rate) before it is windowed, and an empty chunk
    with ``restart`` where windows restart (enrollment collects the wearer's samples there).
    """

    def __init__(self, bundle: Bundle | str | os.PathLike[str], options: ClassifierOptions | None = None, *,
                 predictor: Predictor | None = None, entry: dict[str, Any] | None = None,
                 ingest: IngestOptions | None = None) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        self.options = options or ClassifierOptions()
        if predictor is None:
            entry, predictor = load_bundle_predictor(self.bundle, self.options.artifact, self.options.backend,
                                                     self.options.threads)
        self.entry = entry or {"name": "?", "file": "?"}
        self.predictor = predictor
        b = self.bundle
        self.rate_hz = float(b.sample_rate_hz)
        self.channels = len(b.channels)
        self.channel_names = [c["name"] for c in b.channels]
        self.ingest = IngestStage(b.channels, self.rate_hz, ingest)
        self.assembler = WindowAssembler(b.window, b.stride, self.channels)
        # The model input is sized from the interpreter, not assumed (feature models take other shapes);
        # `--orientation free` bundles turn each window into the model's reference frame first.
        self.transform = InputTransform(b.manifest).stream(tuple(int(d) for d in predictor.input_shape[1:]))
        self.head = load_head(b) if self.options.use_head else None
        if self.head is not None and predictor.embedding_dim is None:
            raise HartoolError(f"{b.path}: the bundle has an enrolled head but artifact {self.entry.get('name')} "
                               "has no embedding output (re-export it with 'hartool quantize')")
        self.labels = list(self.head.labels if self.head is not None else b.labels)
        self.smoother: Smoother = make_smoother(parse_smooth(self.options.smooth), len(self.labels))
        self.lag = self.smoother.lag  # windows a label waits for (look-ahead smoothing)
        # Held postures for the smoother (hmm:...,still=P), read from the raw windows: only acc + gyro say them.
        # About 50 us a window in Python, so only when the smoother uses them.
        self.bouts = StillBouts() if self.smoother.needs_held and reads_imu(b.channels) else None
        self.tap: Callable[[GridChunk], None] | None = None
        self._held: list[WindowPrediction] = []  # classified, waiting for the smoother's look-ahead
        self._ready: list[WindowPrediction] = []  # finished, in window order, returned by the next call
        self.started = time.perf_counter()
        self._lost = 0  # wire + queue losses reported by the driver, plus samples lost at restarts
        self.restarts = 0
        self._seg_t0 = 0.0  # device time of the first grid sample of the current segment
        self._seg_start = 0  # assembler sample count at that sample

    # ------------------------------------------------------------------------------------------------
    def feed(self, batch: Batch) -> list[WindowPrediction]:
        """Classify what a decoded batch (:class:`~hartool.wire.batch.DecodedBatch`) completes."""
        self._chunks(self.ingest.feed(batch))
        return self._take()

    def push(self, t_s: np.ndarray | None, values: np.ndarray) -> list[WindowPrediction]:
        """Classify what these samples complete; device-timed samples are resampled onto the model's grid."""
        self._chunks(self.ingest.push(t_s, values))
        return self._take()

    def push_parts(self, parts: Sequence[SensorReadings], layout: Sequence[str]) -> list[WindowPrediction]:
        """Sensors on their own clocks: ``parts`` = (name, model channel indices, t_s, values) per sensor;
        ``layout`` names every sensor the source sends (emission waits for all of them)."""
        self._chunks(self.ingest.push_parts(parts, layout))
        return self._take()

    def end_of_input(self) -> list[WindowPrediction]:
        """The input ended: classify what the ingest stage still held for its time-unit decision."""
        self._chunks(self.ingest.flush())
        return self._take()

    def flush(self) -> list[WindowPrediction]:
        """The end of the stream: the windows a look-ahead smoother still holds, judged from what came after."""
        self._release()
        return self._take()

    @property
    def holding(self) -> int:
        """Windows classified but not yet returned (a look-ahead smoother waits for later ones, or a gap
        released them after the last call)."""
        return len(self._held) + len(self._ready)

    @property
    def device_samples(self) -> int:
        """Samples the device sent (for sensors on separate clocks: readings of all of them)."""
        return self.ingest.device_samples

    def _take(self) -> list[WindowPrediction]:
        out, self._ready = self._ready, []
        return out

    def gap(self, reason: str = "gap") -> None:
        """Samples were lost here (sequence gap, reconnect): restart windows and the resampler's grid.
        Predictions the smoother held come out of the next :meth:`push` (or :meth:`flush`)."""
        self.ingest.gap()
        self._restart()

    @property
    def dropped(self) -> int:
        """Samples lost so far: reported by the driver, pending at a window restart, or timed backwards."""
        return self._lost + self.ingest.dropped

    def add_dropped(self, n: int) -> None:
        """Count samples the wire or the queue lost (they are part of every later window's ``dropped``)."""
        self._lost += int(n)

    # ------------------------------------------------------------------------------------------------
    def _restart(self) -> None:
        self._lost += self.assembler.reset()
        self._release()  # look-ahead stops at the hole: the held windows are judged from what came before it
        self.restarts += 1
        self.transform.gap()
        if self.bouts is not None:
            self.bouts.gap()
        if self.tap is not None:
            self.tap(GridChunk(None, np.zeros((0, self.channels)), True))

    def pop_messages(self) -> list[str]:
        """Status lines for the user (ingest notes, the orientation calibration's progress) since the last call."""
        return self.ingest.pop_messages() + self.transform.pop_messages()

    def _chunks(self, chunks: list[GridChunk]) -> None:
        for chunk in chunks:
            if chunk.restart and self.assembler.samples:
                self._restart()
            self._push_grid(chunk.t, chunk.values)

    def _push_grid(self, t: np.ndarray | None, values: np.ndarray) -> None:
        if not len(values):
            return
        if self.tap is not None:
            self.tap(GridChunk(t, values, False))
        if t is not None:
            self._seg_t0, self._seg_start = float(t[0]), self.assembler.samples
        for index, end, window in self.assembler.push(values):
            if t is None:
                t_end = (end - 1) / self.rate_hz
            else:
                t_end = self._seg_t0 + (end - 1 - self._seg_start) / self.rate_hz
            held = self.bouts.push(window) if self.bouts is not None else False
            self._smooth(self._classify(index, end, window, t_end), held)

    def _smooth(self, pred: WindowPrediction, held: bool) -> None:
        """Hand the window's raw probabilities to the smoother; finish the window its answer is for."""
        self._held.append(pred)
        out = self.smoother.update(np.asarray(pred.raw_probs, dtype=np.float32), held)
        if out is not None:
            self._finish(self._held.pop(0), out, lag=len(self._held))

    def _release(self) -> None:
        """Finish every held window with what the smoother can say now, and start the smoother afresh."""
        outs = self.smoother.flush()
        held, self._held = self._held, []
        for i, (pred, out) in enumerate(zip(held, outs, strict=True)):
            self._finish(pred, out, lag=len(held) - 1 - i)

    def _finish(self, pred: WindowPrediction, smoothed: np.ndarray, lag: int) -> None:
        """Set the smoothed label; ``lag`` = windows classified after this one before its label was set."""
        smoothed = np.asarray(smoothed, dtype=np.float32)
        k = int(smoothed.argmax())
        pred.label, pred.confidence, pred.probs = self.labels[k], float(smoothed[k]), smoothed.tolist()
        pred.uncertain = pred.confidence < self.options.min_confidence or not pred.calibrated
        pred.lag = lag
        self._ready.append(pred)

    def _classify(self, index: int, end: int, window: np.ndarray, t_end: float) -> WindowPrediction:
        x = self.transform(window)
        t0 = time.perf_counter_ns()
        head_name = "model"
        if self.head is not None:
            probs, emb = self.predictor.predict_with_embedding(x)
            probs, _labels, head_name = self.head.apply(emb[0], probs[0])
        else:
            probs = self.predictor.predict(x)[0]
        t1 = time.perf_counter_ns()
        raw = np.asarray(probs, dtype=np.float32)
        raw_label = self.labels[int(raw.argmax())]
        # label/confidence/probs are the raw ones until _finish sets the smoothed ones.
        return WindowPrediction(
            window=index, end_sample=end, label=raw_label, confidence=float(raw.max()),
            probs=raw.tolist(), dropped=self.dropped, inference_us=(t1 - t0) / 1000.0,
            e2e_us=0.0, t_s=time.perf_counter() - self.started, uncertain=False,
            t_end_s=float(t_end), raw_probs=raw.tolist(), raw_label=raw_label,
            head=head_name, labels=self.labels if self.head is not None else None,
            calibrated=self.transform.calibrated)

    # ------------------------------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        """Ingest and window counters for the stream summary."""
        return {"grid_samples": self.assembler.samples, "windows": self.assembler.windows,
                "pending": self.assembler.pending, "restarts": self.restarts, **self.ingest.counters()}
