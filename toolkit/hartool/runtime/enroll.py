"""On-device enrollment: teach a bundle a new activity, or adapt it to its wearer, with numpy and the interpreter only.

``enroll(bundle, EnrollOptions(SourceSpec(port), label=...))`` reads ``seconds`` of samples from any source
``stream`` reads (device, listener, recorded CSV), cuts them into densely overlapping windows, embeds
them with the bundle's artifact (its second output), and refits the bundle's head
(:mod:`hartool.runtime.heads`) on the stored reference windows plus everything the wearer taught so far.

Bundle files written (new names each time, so a crash leaves the old head in force):
``enroll-<id>.npz`` (the wearer's preprocessed windows and their labels: what lets ``--remove`` and
``--replace`` refit without the device re-recording) and ``head-<id>.npz`` (the fitted head); the
manifest's ``head`` entry, written last and atomically, is what makes them current.
"""

from __future__ import annotations

import getpass
import io
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import atomic_write_bytes
from ..core.bundle import Bundle, file_entry
from ..core.csvformat import canonical_label
from ..core.errors import BundleError, DataError, HartoolError
from ..core.preprocess import preprocess
from ..wire.spec import SourceSpec
from .backends import Predictor
from .classifier import ClassifierOptions, StreamClassifier
from .heads import HEAD_KEY, FitParams, Head, _logsumexp, balanced_weights, fit_logistic
from .resample import Resampler

REFERENCE_FILE = "enroll_reference.npz"
KIND_NEW, KIND_PERSONAL = 0, 1
MIN_SECONDS = 10.0
# Enrollment windows overlap by 7/8: 30 s at 50 Hz give ~180 windows instead of ~22.
ENROLL_STRIDE_DIVISOR = 8
# Warn when the wearer's new activity would be read as an old one this often (or the reverse).
OVERLAP_WARN = 0.2
OLD_TAKEN_WARN = 0.05
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
    # Live sources: give up after this long without enough samples.
    timeout_s: float | None = None
    params: FitParams = field(default_factory=FitParams)


@dataclass
class EnrollResult:
    """What enrollment did: the head now in force, warnings (overlap) and timings."""

    bundle: Path
    head: dict[str, Any] | None
    added: list[str]
    windows: int
    seconds: float
    expected: dict[str, Any]
    warnings: list[str]
    elapsed_s: float
    # CPU time of this process: what the wall time would be on an idle machine (the 2 shared cores are not).
    cpu_s: float = 0.0


@dataclass
class _Store:
    """The wearer's windows kept in the bundle (what the head is refitted from)."""

    # float32 (N, ...) preprocessed windows: kept exact, as the head is fitted on their embeddings (the
    # reference windows can be float16: they only describe the old classes' spread).
    x: np.ndarray
    label: np.ndarray  # int (N,) index into ``labels``
    kind: np.ndarray  # int8 (N,) KIND_NEW / KIND_PERSONAL
    labels: list[str]

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> _Store:
        return cls(np.empty((0, *shape), np.float32), np.empty(0, np.int64), np.empty(0, np.int8), [])

    def without(self, label: str, kind: int) -> _Store:
        if label not in self.labels:
            return self
        keep = ~((self.label == self.labels.index(label)) & (self.kind == kind))
        return _Store(self.x[keep], self.label[keep], self.kind[keep], self.labels)

    def plus(self, x: np.ndarray, label: str, kind: int) -> _Store:
        labels = self.labels if label in self.labels else [*self.labels, label]
        idx = np.full(len(x), labels.index(label), dtype=np.int64)
        return _Store(np.concatenate([self.x, x.astype(np.float32)]), np.concatenate([self.label, idx]),
                      np.concatenate([self.kind, np.full(len(x), kind, np.int8)]), labels)

    def labels_of(self, kind: int) -> list[str]:
        present = set(self.label[self.kind == kind].tolist())
        return [name for i, name in enumerate(self.labels) if i in present]


# --- reading samples ----------------------------------------------------------------------------------

def read_samples(source: SourceSpec, bundle: Bundle, seconds: float, opts: EnrollOptions,
                 loaded: tuple[dict[str, Any], Predictor] | None = None,
                 on_status: Callable[[str], None] | None = None) -> list[np.ndarray]:
    """Up to ``seconds`` of samples on the model's rate grid, in the bundle's units, from any source `stream`
    reads: continuous segments (n_i, C), split where the stream had a hole (gap, reconnect, lost samples).

    The samples take exactly the stream's path (runtime/stream.py): units, device time and its unit,
    resampling of any device rate and of sensors on separate clocks (Sensor Logger) onto the model's grid;
    only the interpreter is replaced by a collector, so what is enrolled is what `stream` will classify.
    ``loaded``: the (entry, predictor) already loaded by the caller; ``on_status`` gets the stream's status
    lines (detected format and time unit, clock alignment, warnings).
    """
    from .session import run_stream
    from .stream import StreamOptions

    want = int(round(seconds * bundle.sample_rate_hz))
    stop = threading.Event()
    entry, pred = loaded or _require_embedding(bundle, opts.artifact)
    collector = _GridCollector(bundle, want, stop, pred, entry)
    # A live source gets the recording time plus a margin; a file ends by itself.
    sopts = StreamOptions(source, duration_s=opts.timeout_s if opts.timeout_s else 3.0 * seconds + 30.0)
    summary = run_stream(bundle.path, sopts, lambda _p: None, on_status, stop=stop, classifier=collector)
    if summary.end_reason == "error":
        raise DataError(f"{source.port}: {summary.message}")
    return collector.segments()


class _GridCollector(StreamClassifier):
    """A :class:`StreamClassifier` that keeps the grid samples instead of classifying them (enrollment)."""

    def __init__(self, bundle: Bundle, want: int, stop: threading.Event, pred: Predictor,
                 entry: dict[str, Any]) -> None:
        super().__init__(bundle, ClassifierOptions(use_head=False), predictor=pred, entry=entry)
        self.want, self.stop = want, stop
        self._done: list[np.ndarray] = []
        self._current: list[np.ndarray] = []
        self.total = 0

    def _push_grid(self, t: np.ndarray | None, values: np.ndarray) -> None:
        take = np.asarray(values[: max(0, self.want - self.total)], dtype=np.float32)
        if len(take):
            self._current.append(take)
            self.total += len(take)
        if self.total >= self.want:
            self.stop.set()

    def _has_samples(self) -> bool:
        return bool(self.total)  # the collector keeps its samples itself; the assembler stays empty

    def _restart(self) -> None:
        # A hole in the stream: windows must not span it, so the samples after it start a new segment.
        if self._current:
            self._done.append(np.concatenate(self._current))
            self._current = []
        super()._restart()

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
                runs += [(str(labels[lo]), seg) for seg in _on_grid(t - t[0], session.values[lo:hi], rate)]
    return runs


def _on_grid(t_s: np.ndarray, values: np.ndarray, rate_hz: float) -> list[np.ndarray]:
    """Linear resampling onto ``rate_hz`` (the stream's Resampler), split where the recording has a hole."""
    resampler = Resampler(rate_hz, values.shape[1])
    segments: list[list[np.ndarray]] = [[]]
    for chunk in resampler.push("imu", t_s, np.asarray(values, dtype=np.float64)):
        if chunk.restart and segments[-1]:
            segments.append([])
        segments[-1].append(chunk.values.astype(np.float32))
    return [np.concatenate(seg) for seg in segments if seg]


def cut_windows(samples: np.ndarray, bundle: Bundle, stride: int | None = None) -> np.ndarray:
    """Preprocessed, densely overlapping windows of one continuous recording (model input)."""
    window = bundle.window
    stride = stride or max(1, window // ENROLL_STRIDE_DIVISOR)
    if len(samples) < window:
        return np.empty((0, *_input_shape(bundle)), np.float32)
    view = np.lib.stride_tricks.sliding_window_view(samples, window, axis=0)[::stride]
    return preprocess(np.ascontiguousarray(view.transpose(0, 2, 1)), bundle.preprocessing)


def _input_shape(bundle: Bundle) -> tuple[int, ...]:
    shape = (bundle.manifest.get("input") or {}).get("shape")
    return tuple(int(v) for v in shape[1:]) if shape else (bundle.window, len(bundle.channels))


# --- fitting ------------------------------------------------------------------------------------------

@dataclass
class _Reference:
    """Embeddings of the bundle's stored training-data windows (computed with the enrolling artifact)."""

    probs: np.ndarray
    emb: np.ndarray
    y: np.ndarray
    split: np.ndarray  # 0 = training subjects, 1 = validation subjects (never trained on)


def load_reference(bundle: Bundle, pred: Predictor) -> _Reference:
    """Embed the reference windows that quantize stored; BundleError when they are missing."""
    info = (bundle.manifest.get("embedding") or {}).get("reference") or {}
    path = bundle.path / str(info.get("file", REFERENCE_FILE))
    if not path.is_file():
        raise BundleError(f"{bundle.path}: no enrollment reference windows ({path.name}); "
                          f"re-run 'hartool quantize {bundle.path}'")
    try:
        with np.load(path, allow_pickle=False) as ref:
            x, y, split = ref["x"], ref["y"].astype(np.int64), ref["split"].astype(np.int8)
    except (OSError, ValueError, KeyError) as exc:
        raise BundleError(f"{path}: corrupt enrollment reference ({exc})") from exc
    return _Reference(*embed(pred, x), y, split)


def embed(pred: Predictor, x: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(probs, embeddings) of preprocessed windows, float32."""
    if not len(x):
        return np.empty((0, pred.n_classes), np.float32), np.empty((0, pred.embedding_dim or 0), np.float32)
    parts = [pred.predict_with_embedding(np.asarray(x[i : i + batch], np.float32)) for i in range(0, len(x), batch)]
    return np.concatenate([p for p, _ in parts]), np.concatenate([e for _, e in parts])


def _head_name(new_labels: list[str], personalized: bool) -> str:
    if new_labels and personalized:
        return "personalized+enrolled"
    return "personalized" if personalized else "enrolled"


@dataclass
class _Heldout:
    """Gate scores of one new class's windows, each half scored by a head fitted without it."""

    rows: np.ndarray  # indices into the store
    r: np.ndarray  # raw gate log-odds (before the gate bias)
    which: np.ndarray  # index of the winning new class (among the new ones)


def _gate_logodds(weights: np.ndarray, bias: np.ndarray, z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    logits = z @ weights.T + bias
    return _logsumexp(logits[:, k:]) - _logsumexp(logits[:, :k]), logits[:, k:].argmax(axis=1)


def _heldout_gate(z_ref: np.ndarray, y_ref: np.ndarray, z_store: np.ndarray, y_store: np.ndarray, n_cls: int,
                  k: int, params: FitParams) -> dict[int, _Heldout]:
    """Per new class: scores of its first half from a fit on its second half, and the reverse (2 fits each).

    The halves are contiguous, so the scores include the drift within one recording, as later use will.
    """
    out: dict[int, _Heldout] = {}
    for c in range(k, n_cls):
        rows = np.flatnonzero(y_store == c)
        r, which = np.full(len(rows), -np.inf), np.zeros(len(rows), np.int64)
        for held in (np.arange(len(rows) // 2), np.arange(len(rows) // 2, len(rows))):
            if len(held) == 0 or len(held) == len(rows):
                continue
            keep = np.setdiff1d(np.arange(len(y_store)), rows[held])
            z, y = np.concatenate([z_ref, z_store[keep]]), np.concatenate([y_ref, y_store[keep]])
            weights, bias = fit_logistic(z, y, n_cls, balanced_weights(y, n_cls), params)
            r[held], which[held] = _gate_logodds(weights, bias, z_store[rows[held]], k)
        out[c] = _Heldout(rows, r, which)
    return out


def fit_head(base_labels: list[str], ref: _Reference, store: _Store, store_emb: np.ndarray,
             params: FitParams) -> tuple[Head, dict[int, _Heldout]]:
    """Fit the head on reference + wearer embeddings and calibrate its gate; also the held-out gate scores.

    Gate bias: the stricter of (a) at most ``max_false_rate`` of validation-subject old windows pass and
    (b) only ``recall_keep`` of each new class's held-out windows pass. (b) is what keeps a wearer's own
    old activities intact: the gate opens no wider than the new activity needs.
    """
    k = len(base_labels)
    new_labels = store.labels_of(KIND_NEW)
    label_index = {name: i for i, name in enumerate([*base_labels, *new_labels])}
    # The wearer's windows of a base class (personalization) keep its index: they teach the gate too.
    y_store = np.array([label_index[store.labels[i]] for i in store.label], dtype=np.int64)
    n_cls = k + len(new_labels)
    # The gate is calibrated on the validation subjects: keep them out of its fit when there are any.
    fit_ref = ref.split == 0 if np.any(ref.split == 1) and np.any(ref.split == 0) else np.ones(len(ref.y), bool)
    emb_all = np.concatenate([ref.emb, store_emb])
    mean, scale = emb_all.mean(axis=0), emb_all.std(axis=0) + 1e-6
    z_ref, z_store = (ref.emb - mean) / scale, (store_emb - mean) / scale
    head = Head(name=_head_name(new_labels, bool(store.labels_of(KIND_PERSONAL))), base_labels=list(base_labels),
                new_labels=new_labels, mean=mean.astype(np.float32), scale=scale.astype(np.float32),
                weights=np.zeros((0, emb_all.shape[1]), np.float32), bias=np.zeros(0, np.float32))
    heldout: dict[int, _Heldout] = {}
    if new_labels:
        z, y = np.concatenate([z_ref[fit_ref], z_store]), np.concatenate([ref.y[fit_ref], y_store])
        head.weights, head.bias = fit_logistic(z, y, n_cls, balanced_weights(y, n_cls), params)
        r_val = _gate_logodds(head.weights, head.bias, z_ref[~fit_ref] if np.any(~fit_ref) else z_ref, k)[0]
        bias = min(0.0, -float(np.quantile(r_val, 1.0 - params.max_false_rate)))
        if params.recall_keep < 1.0:
            heldout = _heldout_gate(z_ref[fit_ref], ref.y[fit_ref], z_store, y_store, n_cls, k, params)
            # Each new class keeps its share: the most permissive of the per-class limits.
            limits = [-float(np.quantile(h.r[np.isfinite(h.r)], 1.0 - params.recall_keep))
                      for h in heldout.values() if np.isfinite(h.r).any()]
            if limits:
                bias = min(bias, max(limits))
        head.gate_bias = bias
    personal = store.kind == KIND_PERSONAL
    if personal.any():
        _personalize(head, z_ref, ref.y, z_store[personal], y_store[personal], params)
    return head, heldout


def _personalize(head: Head, z_ref: np.ndarray, y_ref: np.ndarray, z_user: np.ndarray, y_user: np.ndarray,
                 params: FitParams) -> None:
    """Old-class regression refitted with the wearer's windows weighted up; blended with the model's softmax."""
    k = len(head.base_labels)
    z = np.concatenate([z_ref, z_user])
    y = np.concatenate([y_ref, y_user])
    w = np.concatenate([balanced_weights(y_ref, k), params.personal_weight * balanced_weights(y_user, k)])
    head.personal_weights, head.personal_bias = fit_logistic(z, y, k, w, params)
    head.personal_blend = params.personal_blend


def expected_confusion(head: Head, heldout: dict[int, _Heldout], ref: _Reference, store_probs: np.ndarray,
                       label: str) -> dict[str, Any]:
    """How ``label`` will be confused: its held-out windows as the final gate reads them, and old windows taken for it."""
    labels, k = head.labels, len(head.base_labels)
    c = labels.index(label)
    out: dict[str, Any] = {}
    if c in heldout:
        h = heldout[c]
        s = 1.0 / (1.0 + np.exp(-np.clip(h.r + head.gate_bias, -60, 60)))
        p = store_probs[h.rows]
        new_wins = s > (1.0 - s) * p.max(axis=1)
        pred = np.where(new_wins, k + h.which, p.argmax(axis=1))
        counts = np.bincount(pred, minlength=len(labels))
        out["read_as"] = {labels[i]: float(n / len(pred)) for i, n in enumerate(counts) if n}
        out["recall"] = out["read_as"].get(label, 0.0)
    val = ref.split == 1 if np.any(ref.split == 1) else np.ones(len(ref.y), bool)
    pred = head.apply_batch(ref.emb[val], ref.probs[val]).argmax(axis=1)
    out["old_taken"] = {name: float(np.mean(pred[ref.y[val] == i] == c))
                        for i, name in enumerate(head.base_labels) if np.any(ref.y[val] == i)}
    return out


# --- bundle storage -----------------------------------------------------------------------------------

def _load_store(bundle: Bundle) -> _Store:
    desc = bundle.manifest.get(HEAD_KEY) or {}
    data = (desc.get("data") or {}).get("file")
    if not data:
        return _Store.empty(_input_shape(bundle))
    path = bundle.path / data
    try:
        with np.load(path, allow_pickle=False) as f:
            return _Store(f["x"], f["label"].astype(np.int64), f["kind"].astype(np.int8), [str(v) for v in f["labels"]])
    except (OSError, ValueError, KeyError) as exc:
        raise BundleError(f"{path}: enrollment data missing or corrupt ({exc})") from exc


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _commit(bundle: Bundle, head: Head | None, store: _Store, entry: dict[str, Any]) -> dict[str, Any] | None:
    """Write the new head and data under fresh names, then the manifest (the commit), then drop the old files."""
    old = bundle.manifest.get(HEAD_KEY) or {}
    old_files = [f for f in (old.get("file"), (old.get("data") or {}).get("file")) if f]
    written: list[Path] = []
    try:
        if head is None:
            bundle.manifest.pop(HEAD_KEY, None)
        else:
            token = uuid.uuid4().hex[:10]
            data_path = atomic_write_bytes(bundle.path / f"enroll-{token}.npz", _npz_bytes(
                x=store.x, label=store.label, kind=store.kind, labels=np.asarray(store.labels)))
            written.append(data_path)
            head_file = atomic_write_bytes(bundle.path / f"head-{token}.npz", _npz_bytes(**head.arrays()))
            written.append(head_file)
            bundle.manifest[HEAD_KEY] = {**head.describe(), **entry, **file_entry(head_file, bundle.path),
                                         "data": file_entry(data_path, bundle.path)}
        bundle.save()
    except BaseException:
        for path in written:  # the manifest still names the old files: these are orphans
            path.unlink(missing_ok=True)
        bundle.manifest[HEAD_KEY] = old
        if not old:
            bundle.manifest.pop(HEAD_KEY, None)
        raise
    for name in old_files:
        if (bundle.path / name) not in written:
            (bundle.path / name).unlink(missing_ok=True)
    return bundle.manifest.get(HEAD_KEY)


def _require_embedding(bundle: Bundle, artifact: str | None) -> tuple[dict[str, Any], Predictor]:
    from .artifacts import load_bundle_predictor

    if not (bundle.manifest.get("embedding") or {}).get("artifacts"):
        raise BundleError(f"{bundle.path}: bundle has no embedding output to enroll with; re-run "
                          f"'hartool quantize {bundle.path}' with this hartool version")
    entry, pred = load_bundle_predictor(bundle, artifact)
    if pred.embedding_dim is None:
        raise BundleError(f"{bundle.path}: artifact {entry['name']} has no embedding output; "
                          f"choose one of {', '.join(bundle.manifest['embedding']['artifacts'])} with --artifact")
    return entry, pred


def _history(old: dict[str, Any], key: str, drop: set[str]) -> list[dict[str, Any]]:
    return [h for h in old.get(key, []) if h.get("label") not in drop]


def _refit(bundle: Bundle, pred: Predictor, store: _Store, params: FitParams) -> tuple[Head | None, np.ndarray,
                                                                                         dict[int, _Heldout], _Reference]:
    ref = load_reference(bundle, pred)
    store_probs, store_emb = embed(pred, store.x)
    if not len(store.label):
        return None, store_probs, {}, ref
    head, heldout = fit_head(bundle.labels, ref, store, store_emb, params)
    return head, store_probs, heldout, ref


# --- public API ---------------------------------------------------------------------------------------

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _who(opts: EnrollOptions) -> str:
    if opts.by:
        return opts.by
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def _check_length(n_samples: int, bundle: Bundle, source: str, min_seconds: float, what: str) -> None:
    """Fatal one-liner for an empty or too-short recording (fewer than ``min_seconds`` or one window)."""
    rate = bundle.sample_rate_hz
    need = max(min_seconds * rate, bundle.window)
    if not n_samples:
        raise DataError(f"{source}: no samples for {what} (empty recording)")
    if n_samples < need:
        raise DataError(f"{source}: {what} recording too short: {n_samples / rate:.1f} s, "
                        f"need at least {need / rate:.1f} s")


def _check_new_label(bundle: Bundle, label: str, opts: EnrollOptions, store: _Store) -> None:
    if label in bundle.labels:
        raise HartoolError(f"{label} is one of the model's own activities; use --personalize to adapt it "
                           "to this wearer")
    if label in store.labels_of(KIND_NEW) and not opts.replace:
        raise HartoolError(f"{label} is already enrolled (use --replace to enroll it again, or --remove {label})")


def _new_class_windows(bundle: Bundle, label: str, opts: EnrollOptions, loaded: tuple[dict[str, Any], Predictor],
                       on_status: Callable[[str], None] | None) -> tuple[np.ndarray, float]:
    segments = read_samples(opts.source, bundle, opts.seconds, opts, loaded, on_status)
    n = sum(len(seg) for seg in segments)
    _check_length(n, bundle, opts.source.port, opts.min_seconds, label)
    return _windows_of(segments, bundle), n / bundle.sample_rate_hz


def _windows_of(segments: list[np.ndarray], bundle: Bundle) -> np.ndarray:
    """Windows of every continuous segment (none spans a hole between two of them)."""
    parts = [cut_windows(seg, bundle) for seg in segments]
    return np.concatenate(parts) if parts else np.empty((0, *_input_shape(bundle)), np.float32)


def _personal_windows(bundle: Bundle, opts: EnrollOptions, loaded: tuple[dict[str, Any], Predictor],
                      on_status: Callable[[str], None] | None) -> dict[str, tuple[np.ndarray, float]]:
    """label -> (windows, seconds) from a labelled CSV (file or folder), or the whole recording as --label."""
    source = Path(opts.source.port)
    wanted = canonical_label(opts.label) if opts.label else None
    if source.exists() and (source.is_dir() or source.suffix.lower() == ".csv"):
        runs = read_labelled(source, bundle)
        if wanted:
            runs = [(lab, s) for lab, s in runs if lab == wanted]
    elif wanted:
        runs = [(wanted, seg) for seg in read_samples(opts.source, bundle, opts.seconds, opts, loaded, on_status)]
    else:
        raise HartoolError("--personalize needs a labelled CSV recording (or folder), or --label for a live source")
    unknown = sorted({lab for lab, _ in runs} - set(bundle.labels))
    if unknown:
        raise HartoolError(f"{opts.source.port}: labels {', '.join(unknown)} are not activities of this bundle "
                           f"({', '.join(bundle.labels)}); enroll new ones without --personalize")
    out: dict[str, tuple[np.ndarray, float]] = {}
    for lab in dict.fromkeys(lab for lab, _ in runs):
        parts = [cut_windows(s, bundle) for name, s in runs if name == lab]
        n = sum(len(s) for name, s in runs if name == lab)
        _check_length(n, bundle, opts.source.port, opts.min_seconds, lab)
        out[lab] = (np.concatenate(parts), n / bundle.sample_rate_hz)
    if not out:
        raise DataError(f"{opts.source.port}: no labelled samples to personalize with (empty recording)")
    return out


def enroll(bundle_dir: str | os.PathLike[str], opts: EnrollOptions,
           on_status: Callable[[str], None] | None = None) -> EnrollResult:
    """Enroll ``opts.label`` from ``opts.source`` (or personalize), refit the head and commit it to the bundle.

    ``on_status`` receives the live source's status lines (format, time unit, warnings), as `stream` shows them."""
    started, cpu = time.perf_counter(), time.process_time()
    bundle = Bundle.load(bundle_dir)
    store = _load_store(bundle)
    if not opts.personalize:
        if not opts.label:
            raise HartoolError("give --label NAME for the new activity")
        _check_new_label(bundle, canonical_label(opts.label), opts, store)
    entry, pred = _require_embedding(bundle, opts.artifact)
    old = dict(bundle.manifest.get(HEAD_KEY) or {})
    who, when = _who(opts), _now()
    if opts.personalize:
        got = _personal_windows(bundle, opts, (entry, pred), on_status)
        for lab, (windows, _) in got.items():
            store = store.without(lab, KIND_PERSONAL).plus(windows, lab, KIND_PERSONAL)
        personal = _history(old, "personalization", set(got)) + [
            {"label": lab, "by": who, "at": when, "source": opts.source.port, "seconds": round(sec, 1),
             "windows": len(w)} for lab, (w, sec) in got.items()]
        enrolled, added = old.get("enrolled", []), list(got)
    else:
        label = canonical_label(str(opts.label))
        windows, seconds = _new_class_windows(bundle, label, opts, (entry, pred), on_status)
        store = store.without(label, KIND_NEW).plus(windows, label, KIND_NEW)
        got = {label: (windows, seconds)}
        enrolled = _history(old, "enrolled", {label}) + [
            {"label": label, "by": who, "at": when, "source": opts.source.port, "seconds": round(seconds, 1),
             "windows": len(windows)}]
        personal, added = old.get("personalization", []), [label]
    head, store_probs, heldout, ref = _refit(bundle, pred, store, opts.params)
    assert head is not None  # the store has at least the windows just added
    expected, warnings = {}, []
    if not opts.personalize:
        expected[added[0]] = expected_confusion(head, heldout, ref, store_probs, added[0])
        warnings = overlap_warnings(added[0], expected[added[0]])
    meta = {"artifact": entry["name"], "enrolled": enrolled, "personalization": personal, "updated": when,
            "params": {k: getattr(opts.params, k) for k in opts.params.__dataclass_fields__},
            "expected": {**old.get("expected", {}), **expected}}
    committed = _commit(bundle, head, store, meta)
    windows = sum(len(w) for w, _ in got.values())
    seconds = sum(s for _, s in got.values())
    return EnrollResult(bundle.path, committed, added, windows, seconds, expected, warnings,
                        time.perf_counter() - started, time.process_time() - cpu)


def overlap_warnings(label: str, expected: dict[str, Any]) -> list[str]:
    """One line per serious overlap between ``label`` and an old activity, with the expected confusion."""
    out = []
    read_as = {k: v for k, v in expected.get("read_as", {}).items() if k != label}
    taken = expected.get("old_taken", {})
    for name in sorted(set(read_as) | set(taken)):
        a, b = read_as.get(name, 0.0), taken.get(name, 0.0)
        if a >= OVERLAP_WARN or b >= OLD_TAKEN_WARN:
            out.append(f"warning: {label} overlaps {name}: expect about {a:.0%} of {label} windows read as {name} "
                       f"and {b:.0%} of {name} windows read as {label}")
    return out


def remove(bundle_dir: str | os.PathLike[str], label: str, params: FitParams | None = None) -> EnrollResult:
    """Undo what was taught for ``label`` (an enrolled activity or a personalized one) and refit."""
    started = time.perf_counter()
    bundle = Bundle.load(bundle_dir)
    old = dict(bundle.manifest.get(HEAD_KEY) or {})
    store = _load_store(bundle)
    label = canonical_label(label)
    kinds = [k for k in (KIND_NEW, KIND_PERSONAL) if label in store.labels_of(k)]
    if not kinds:
        taught = store.labels_of(KIND_NEW) + [f"{x} (personalized)" for x in store.labels_of(KIND_PERSONAL)]
        raise HartoolError(f"{label} was not enrolled in {bundle.path} (taught: {', '.join(taught) or 'nothing'})")
    for kind in kinds:
        store = store.without(label, kind)
    params = params or FitParams(**(old.get("params") or {}))
    head = None
    if len(store.label):
        # The artifact the head was fitted with, unless quantize has since replaced it: then the default.
        known = {a["name"] for a in bundle.artifacts}
        entry, pred = _require_embedding(bundle, old.get("artifact") if old.get("artifact") in known else None)
        head = _refit(bundle, pred, store, params)[0]
    else:
        entry = {"name": old.get("artifact")}
    meta = {"artifact": entry["name"], "enrolled": _history(old, "enrolled", {label}),
            "personalization": _history(old, "personalization", {label}), "updated": _now(),
            "params": old.get("params", {}), "expected": {k: v for k, v in old.get("expected", {}).items()
                                                         if k != label}}
    committed = _commit(bundle, head, store, meta)
    return EnrollResult(bundle.path, committed, [], 0, 0.0, {}, [], time.perf_counter() - started)


def list_enrolled(bundle_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What was taught to the bundle: enrolled activities and personalization, who and when."""
    bundle = Bundle.load(bundle_dir)
    desc = bundle.manifest.get(HEAD_KEY) or {}
    return {"bundle": str(bundle.path), "labels": bundle.labels, "head": desc.get("name"),
            "artifact": desc.get("artifact"), "enrolled": desc.get("enrolled", []),
            "personalization": desc.get("personalization", []), "expected": desc.get("expected", {}),
            "embedding": bool((bundle.manifest.get("embedding") or {}).get("artifacts"))}
