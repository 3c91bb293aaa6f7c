"""The whole chain in one call: train CNN + LSTM, quantize, benchmark, then stream a held-out subject.

The held-out subject's whole recording streams first, as fast as the machine allows, through the default
smoothing, scored as a timeline (window accuracy, segment F1, label changes per minute against the truth);
then a short excerpt plays at live pace.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .core.atomic import atomic_write_json
from .runtime.smoothing import DEFAULT_SMOOTHING, make_smoother


@dataclass(frozen=True)
class DemoOptions:
    """Settings of `hartool demo`; `fast` trades accuracy for a run of a few minutes."""

    out: Path = Path("demo-out")
    fast: bool = False
    archs: tuple[str, ...] = ("cnn", "lstm")
    subject: int = 9
    stream_seconds: float = 30.0
    speed: float = 1.0
    bench_runs: int | None = None
    epochs: int | None = None
    max_windows: int | None = None
    seed: int = 0
    smoothing: str = DEFAULT_SMOOTHING

    def train_epochs(self, arch: str) -> int | None:
        if self.epochs is not None:
            return self.epochs
        return {"cnn": 6, "lstm": 4}.get(arch, 4) if self.fast else None


@dataclass
class DemoResult:
    """Every stage's numbers, for the final summary table and demo-out/summary.json."""

    out: Path
    stages_s: dict[str, float] = field(default_factory=dict)
    training: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    benchmark: list[dict[str, Any]] = field(default_factory=list)
    keras_baseline: list[dict[str, Any]] = field(default_factory=list)
    stream: dict[str, Any] = field(default_factory=dict)
    timeline: dict[str, Any] = field(default_factory=dict)


Say = Callable[[str], None]


def window_truth(labels: np.ndarray, end: int, window: int, label_ids: list[int]) -> int | None:
    """Class index of a streamed window whose samples all carry one of the model's labels, else None."""
    seg = labels[end - window : end]
    if len(seg) < window or seg[0] < 0 or not (seg == seg[0]).all() or int(seg[0]) not in label_ids:
        return None
    return label_ids.index(int(seg[0]))


def _informative_start(labels: np.ndarray, n: int, window: int, stride: int, label_ids: list[int]) -> int:
    """Start of the first ``n``-sample excerpt with two activities and >= 75 % single-activity windows.

    A short demo that starts at sample 0 shows mostly a subject standing still; this walks forward to the
    first stretch where the activity changes, deterministically (it never looks at predictions).
    """
    if n >= len(labels):
        return 0
    ends = range(window, n + 1, stride)
    for start in range(0, len(labels) - n + 1, stride):
        seg = labels[start : start + n]
        truths = (window_truth(seg, e, window, label_ids) for e in ends)
        single = [t for t in truths if t is not None]
        if len(set(single)) >= 2 and len(single) >= 0.75 * len(ends):
            return start
    return 0


def run_demo(opts: DemoOptions, say: Say, on_prediction: Callable[[dict[str, Any]], None] | None = None
             ) -> DemoResult:
    """Run every stage into ``opts.out``; ``say`` gets progress lines, ``on_prediction`` live stream rows."""
    from .bench.run import BenchmarkOptions, run_benchmark
    from .export.quantize import QuantizeOptions, quantize_bundle
    from .train.fit import TrainOptions, train

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out=out)
    bundles = {arch: out / "bundles" / arch for arch in opts.archs}

    t0 = time.perf_counter()
    for arch, path in bundles.items():
        say(f"[1/4] training {arch} -> {path}")
        train_opts = TrainOptions(arch=arch, out=path, epochs=opts.train_epochs(arch), seed=opts.seed,
                                  max_windows=opts.max_windows, verbose=2,
                                  train_stride=32 if opts.fast else None)
        res = train(train_opts)
        result.training[arch] = {"accuracy": res.metrics["test"]["accuracy"],
                                 "macro_f1": res.metrics["test"]["macro_f1"], "epochs": res.epochs_run,
                                 "train_time_s": round(res.train_time_s, 1), "params": res.n_params}
        say(f"      {arch}: test accuracy {res.metrics['test']['accuracy']:.2%} in {res.train_time_s:.0f} s")
    result.stages_s["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    qopts = QuantizeOptions(modes=("fp32", "dynamic", "int8"))
    for arch, path in bundles.items():
        say(f"[2/4] quantizing {arch}")
        rows = quantize_bundle(path, qopts, progress=lambda m, a=arch: say(f"      {a}: {m}"))
        result.artifacts[arch] = [asdict(r) for r in rows]
    result.stages_s["quantize"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    runs = opts.bench_runs or (100 if opts.fast else 1000)
    bopts = BenchmarkOptions(runs=runs, warmup=min(50, runs), baseline="keras", keras_predict_runs=min(runs, 100))
    if opts.fast:
        # --fast keeps the 5-minute promise on a busy 2-core machine: default backends only (no XNNPACK-off
        # rows) and 5 s per Keras method (an eager LSTM model(x) call takes ~0.4 s, 100 of them would be 40 s).
        bopts = replace(bopts, backends=("litert", "onnxruntime"), keras_budget_s=5.0)
    for arch, path in bundles.items():
        say(f"[3/4] benchmarking {arch} ({runs} runs per artifact, Keras baseline)")
        doc = run_benchmark(path, bopts)
        atomic_write_json(out / f"benchmark-{arch}.json", doc)
        result.benchmark += [r for r in doc["results"] if r["status"] == "ok"]
        result.keras_baseline += doc["baselines"]
    result.stages_s["benchmark"] = time.perf_counter() - t0

    if "cnn" in bundles:
        t0 = time.perf_counter()
        result.timeline = stream_timeline(bundles["cnn"], opts, say)
        result.stream = stream_subject(bundles["cnn"], opts, say, on_prediction)
        result.stages_s["stream"] = time.perf_counter() - t0
    atomic_write_json(out / "summary.json", asdict(result) | {"out": str(out)})
    return result


def _stream_values(bundle_dir: Path, values: np.ndarray, rate_hz: float, speed: float, smoothing: str,
                   on_window: Callable[[Any], None], say: Say, artifact: str | None = None,
                   protocol: str = "text") -> Any:
    """Replay ``values`` through a virtual serial device into the streaming runtime; returns its summary."""
    from .core.bundle import Bundle
    from .runtime.session import run_stream
    from .runtime.stream import StreamOptions
    from .sim.device import VirtualDevice
    from .wire.spec import SourceSpec

    bundle = Bundle.load(bundle_dir)
    expected = (len(values) - bundle.window) // bundle.stride + 1
    with VirtualDevice(values, rate_hz=rate_hz, speed=speed, protocol=protocol, paused=True) as device:
        device.start()  # paused until the stream's reader sends 's', so no sample is sent before it listens
        sopts = StreamOptions(SourceSpec(device.port_path), artifact=artifact, max_windows=expected, smooth=smoothing,
                              duration_s=len(values) / rate_hz / (speed or 1e9) + 15.0 + expected * 0.05)
        return run_stream(bundle_dir, sopts, on_window, on_status=lambda m: say(f"      {m}"))


def _subject_data(bundle_dir: Path, subject: int) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    from .core.bundle import Bundle
    from .data import load_dataset, recording_for_subject

    bundle = Bundle.load(bundle_dir)
    ds = load_dataset(bundle.manifest["dataset"]["name"])
    recs = recording_for_subject(ds, subject)
    return bundle, ds, np.concatenate([r.values for r in recs]), np.concatenate([r.labels for r in recs])


def stream_timeline(bundle_dir: Path, opts: DemoOptions, say: Say, artifact: str | None = None) -> dict[str, Any]:
    """Stream the subject's whole recording as fast as possible, through the chosen smoothing; score the timeline."""
    from .core.metrics import timeline_report, window_truths

    bundle, ds, values, labels = _subject_data(bundle_dir, opts.subject)
    label_ids = [int(i) for i in bundle.manifest["label_ids"]]
    truth = window_truths(labels, bundle.window, bundle.stride, label_ids)
    say(f"[4/4] streaming subject {opts.subject}'s whole recording: {len(values)} samples "
        f"({len(values) / ds.sample_rate_hz / 60:.1f} min, transitions and unlabelled stretches included) as fast "
        f"as this machine allows, smoothing {opts.smoothing}")
    pred = np.full(len(truth), -1, dtype=np.int64)
    raw = np.full(len(truth), -1, dtype=np.int64)

    def on_window(p: Any) -> None:
        # Placed by the window's last sample, so the truth it is scored against is the samples it saw.
        i, off = divmod(p.end_sample - bundle.window, bundle.stride)
        if off == 0 and 0 <= i < len(pred):
            pred[i] = bundle.labels.index(p.label)
            raw[i] = int(np.argmax(p.raw_probs)) if len(p.raw_probs) else -1  # the unsmoothed label

    t0 = time.perf_counter()
    summary = _stream_values(bundle_dir, values, ds.sample_rate_hz, 0.0, opts.smoothing, on_window, say, artifact)
    wall = time.perf_counter() - t0
    got = pred >= 0  # a window the stream did not deliver (dropped samples) is left out, not guessed
    stride_s = bundle.stride / ds.sample_rate_hz
    lag = make_smoother(opts.smoothing, len(bundle.labels)).lag
    report = timeline_report([(truth[got], pred[got])], stride_s)
    raw_report = timeline_report([(truth[got], raw[got])], stride_s) if got.any() and (raw[got] >= 0).all() else None
    return {"subject": opts.subject, "artifact": summary.artifact, "smoothing": opts.smoothing,
            "label_delay_s": round(lag * stride_s, 2),  # look-ahead smoothing shows each label this late
            "samples": summary.samples, "windows": int(got.sum()), "expected_windows": len(truth), "dropped": summary.dropped,
            "end_reason": summary.end_reason, "wall_s": round(wall, 2),
            "data_minutes": len(values) / ds.sample_rate_hz / 60, "x_real_time": (len(values) / ds.sample_rate_hz) / wall,
            **{k: report[k] for k in ("scored_windows", "window_accuracy", "segment_f1", "segment_precision",
                                      "segment_recall", "changes_per_min", "true_changes_per_min", "change_ratio")},
            "raw": None if raw_report is None else {k: raw_report[k] for k in ("window_accuracy", "segment_f1",
                                                                                "changes_per_min")}}


def stream_subject(bundle_dir: Path, opts: DemoOptions, say: Say,
                   on_prediction: Callable[[dict[str, Any]], None] | None = None,
                   artifact: str | None = None, protocol: str = "text") -> dict[str, Any]:
    """A short excerpt of the held-out subject at ``opts.speed`` through a virtual serial port; score it."""
    bundle, ds, values, labels = _subject_data(bundle_dir, opts.subject)
    n = min(len(values), int(opts.stream_seconds * ds.sample_rate_hz)) if opts.stream_seconds else len(values)
    label_ids = [int(i) for i in bundle.manifest["label_ids"]]
    start = _informative_start(labels, n, bundle.window, bundle.stride, label_ids)
    values, labels = values[start : start + n], labels[start : start + n]
    say(f"      excerpt: {n} samples ({n / ds.sample_rate_hz:.0f} s of data from {start / ds.sample_rate_hz:.0f} s "
        f"on) at {opts.speed:g}x real time")
    correct = raw_correct = scored = 0
    rows: list[dict[str, Any]] = []

    def on_window(p: Any) -> None:
        nonlocal correct, raw_correct, scored
        truth = window_truth(labels, p.end_sample, bundle.window, label_ids)
        row = p.to_json() | {"truth": bundle.labels[truth] if truth is not None else None}
        if truth is not None:
            scored += 1
            correct += int(bundle.labels.index(p.label) == truth)
            raw_correct += int(bundle.labels.index(p.raw_label) == truth)
        rows.append(row)
        if on_prediction:
            on_prediction(row)

    summary = _stream_values(bundle_dir, values, ds.sample_rate_hz, opts.speed, opts.smoothing, on_window, say,
                             artifact, protocol)
    return {"subject": opts.subject, "artifact": summary.artifact, "samples": summary.samples,
            "windows": summary.windows, "scored_windows": scored, "accuracy": correct / scored if scored else None,
            "raw_accuracy": raw_correct / scored if scored else None,
            "dropped": summary.dropped, "bad_lines": summary.bad_lines, "end_reason": summary.end_reason,
            "inference_us": summary.inference_us, "e2e_us": summary.e2e_us, "predictions": rows}
