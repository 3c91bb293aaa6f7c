"""Quantize a bundle to TFLite and ONNX artifacts, converted in a child process (export/jobs.py) and verified at runtime."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.bundle import Bundle, file_entry
from ..core.child import child_env
from ..core.errors import ExportError, HartoolError
from ..runtime.artifacts import contract, default_artifact_record
from ..runtime.backends import Predictor, load_predictor
from .jobs import ConverterPool

TFLITE_MODES = ("fp32", "fp16", "dynamic", "int8", "int16x8")
ONNX_MODES = ("fp32", "dynamic", "int8")  # ONNX "int8" = static QDQ; "dynamic" = ORT dynamic int8 weights
FORMATS = ("tflite", "onnx")
RECURRENT_ARCHS = ("lstm", "cnn-lstm", "bilstm")
INTEGER_MODES = ("int8", "int16x8")


@dataclass(frozen=True)
class QuantizeOptions:
    """Options for `quantize_bundle`, shared by `hartool quantize`, the demo and the Python API."""

    formats: tuple[str, ...] = FORMATS
    modes: tuple[str, ...] = TFLITE_MODES
    calibration_windows: int = 300
    seed: int = 0
    timeout_s: float = 900.0
    opset: int = 17
    latency_runs: int = 1000
    # Integer TFLite models (int8, int16x8) keep float32 input/output by default: the converter puts
    # QUANTIZE/DEQUANTIZE ops at the edges, which LiteRT runs in C++ (~1 us) instead of numpy in Python
    # (~9 us a window on a 2-core x86). True gives int8/int16 tensors at the edges, what tflite-micro wants.
    integer_io: bool = False
    # A python that has tflite_runtime (it needs numpy<2, so it lives in its own venv); None = not checked.
    tflite_runtime_python: str | None = None


@dataclass
class ArtifactResult:
    """One row of the quantize table; ``status`` is "ok" or "failed" (with ``error``)."""

    name: str
    format: str
    mode: str
    status: str
    file: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    error: str | None = None
    accuracy: float | None = None
    val_accuracy: float | None = None  # what the default artifact is chosen by (runtime/artifacts.py)
    delta_pp: float | None = None
    agreement: float | None = None
    size_vs_fp32: float | None = None
    input_dtype: str | None = None
    output_dtype: str | None = None
    quantization: dict[str, Any] = field(default_factory=dict)
    latency_us: float | None = None
    convert_s: float | None = None
    ops: list[dict[str, Any]] | None = None
    tflite_runtime: str | None = None

    def manifest_entry(self) -> dict[str, Any]:
        keep = ("name", "format", "mode", "file", "bytes", "sha256", "accuracy", "val_accuracy", "agreement", "delta_pp",
                "input_dtype", "output_dtype", "quantization", "latency_us", "ops", "tflite_runtime")
        return {k: v for k, v in asdict(self).items() if k in keep}


def parse_list(value: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise HartoolError(f"unknown {what} {', '.join(bad) or repr(value)}; choose from {', '.join(allowed)}")
    return items


# Runs one window through a TFLite interpreter module given as argv[1] and saves every output, dequantized;
# the same code runs under LiteRT (this python) and under tflite_runtime (its own venv, numpy<2).
_RUN_ONE_WINDOW = """
import importlib, sys
import numpy as np
Interpreter = importlib.import_module(sys.argv[1]).Interpreter
it = Interpreter(model_path=sys.argv[2])
it.allocate_tensors()
inp = it.get_input_details()[0]
x = np.load(sys.argv[3]).astype(np.float32)
scale, zp = inp["quantization"]
if np.dtype(inp["dtype"]).kind in "iu" and scale:
    info = np.iinfo(inp["dtype"])
    x = np.clip(np.round(x / scale) + zp, info.min, info.max)
it.set_tensor(inp["index"], x.astype(inp["dtype"]))
it.invoke()
outs = {}
for i, d in enumerate(it.get_output_details()):
    y = it.get_tensor(d["index"]).astype(np.float32)
    s, z = d["quantization"]
    outs["out%d" % i] = (y - z) * s if np.dtype(d["dtype"]).kind in "iu" and s else y
np.savez(sys.argv[4], **outs)
"""
# Float models must match to rounding; integer kernels differ between interpreter builds (XNNPACK QS8 in
# LiteRT, ruy/reference in tflite-runtime 2.14) by output steps of 1/256: up to 13 steps were measured between
# LiteRT on x86 and arm64 (RESULTS.md), 13 on a barely trained test model here, so 16 steps still count as rounding.
FLOAT_TOLERANCE = 1e-4
INTEGER_TOLERANCE = 16 / 256


def _run_one_window(python: str, module: str, path: Path, x_path: Path, out_path: Path) -> str | None:
    """Run ``_RUN_ONE_WINDOW`` in ``python``; None on success, else the reason."""
    try:
        proc = subprocess.run([python, "-c", _RUN_ONE_WINDOW, module, str(path), str(x_path), str(out_path)],
                              capture_output=True, text=True, timeout=120, check=False, env=child_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"not checked ({exc})"
    if proc.returncode == 0:
        return None
    lines = [ln for ln in proc.stderr.splitlines() if "Didn't find op" in ln or "Error" in ln]
    return "rejected: " + (lines[-1].strip() if lines else f"exit {proc.returncode}")[:200]


def _tflite_runtime_check(python: str, path: Path, window: np.ndarray) -> str:
    """Load ``path`` in tflite_runtime, run one window and compare every output with LiteRT's."""
    with tempfile.TemporaryDirectory(prefix="hartool-tflrt-") as tmp:
        x_path, ours, theirs = Path(tmp) / "x.npy", Path(tmp) / "litert.npz", Path(tmp) / "tflrt.npz"
        np.save(x_path, np.asarray(window, dtype=np.float32)[None])
        err = _run_one_window(sys.executable, "ai_edge_litert.interpreter", path, x_path, ours)
        if err:
            return f"not checked (LiteRT: {err})"
        err = _run_one_window(python, "tflite_runtime.interpreter", path, x_path, theirs)
        if err:
            return err
        with np.load(ours) as a, np.load(theirs) as b:
            if sorted(a.files) != sorted(b.files):
                return f"runs, but gives {len(b.files)} outputs, LiteRT {len(a.files)}"
            # Relative to each output's own range: the embedding output (several units wide) moves by more
            # per integer rounding step than the probabilities do.
            diff = max(float(np.abs(a[k] - b[k]).max()) / max(1.0, float(np.abs(a[k]).max())) for k in a.files)
    if diff <= FLOAT_TOLERANCE:
        verdict = "same output as LiteRT"
    elif diff <= INTEGER_TOLERANCE:
        verdict = "same output as LiteRT within integer rounding"
    else:
        verdict = "output DIFFERS from LiteRT"
    return f"runs one window: {verdict} (max |diff| {diff:.2g})"


def _quant_params(pred: Predictor) -> dict[str, Any]:
    return {"input": pred.input_dtype, "output": pred.output_dtype, "backend": pred.backend}


LATENCY_ROUNDS = 20


def _interleaved_latency_us(preds: dict[str, Predictor], x: np.ndarray, runs: int,
                            rounds: int = LATENCY_ROUNDS) -> dict[str, float]:
    """Median latency per window of each predictor, timed in interleaved rounds.

    The latencies pick the default artifact, so they must be comparable: timed one artifact after the other,
    a slow spell of the machine (another process, a frequency change) lands on whichever ran then. The
    demo's bundle once took tflite-dynamic over int8 that way (13.0 vs 16.3 us), though int8 is the faster
    (12.0 vs 13.1 us in `hartool benchmark`). In rounds, every artifact shares every spell; the order
    alternates so none always runs right after another's cache traffic (benchmarks/artifact_choice.py).
    """
    one = x[:1]
    for pred in preds.values():
        for _ in range(10):
            pred.predict(one)
    per_round = max(1, runs // rounds)
    samples = {name: np.empty(per_round * rounds) for name in preds}
    names = list(preds)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            pred, out = preds[name], samples[name]
            for i in range(r * per_round, (r + 1) * per_round):
                t0 = time.perf_counter_ns()
                pred.predict(one)
                out[i] = time.perf_counter_ns() - t0
    return {name: round(float(np.median(t)) / 1000.0, 2) for name, t in samples.items()}


def _time_artifacts(bundle: Bundle, x: np.ndarray, runs: int, say: Callable[[str], None]) -> list[str]:
    """Time every runnable artifact the bundle holds, this run's and earlier ones', in the same rounds.

    Returns the names timed; an earlier run's latency, taken under other conditions, is never compared.
    """
    preds: dict[str, Predictor] = {}
    for entry in bundle.artifacts:
        if entry.get("format") not in FORMATS:
            continue
        try:
            preds[entry["name"]] = load_predictor(bundle.artifact_path(entry), **contract(bundle.manifest))
        except HartoolError as exc:  # e.g. an .onnx file without onnxruntime here
            say(f"{entry['name']}: not timed ({exc})")
    if not preds:
        return []
    say(f"timing {len(preds)} artifact(s) in {LATENCY_ROUNDS} interleaved rounds")
    latency = _interleaved_latency_us(preds, x, runs)
    for entry in bundle.artifacts:
        if entry.get("format") in FORMATS:  # untimed now: no stale number from another run is left to compare
            bundle.upsert_artifact({**entry, "latency_us": latency.get(entry["name"])})
    return list(latency)


@dataclass
class _Run:
    """What one `quantize_bundle` call shares between its steps."""

    bundle: Bundle
    opts: QuantizeOptions
    evalset: Any
    job: dict[str, Any]  # the converter job's common fields
    workdir: Path
    say: Callable[[str], None]
    keras_pred: np.ndarray | None
    pool: ConverterPool
    results: list[ArtifactResult] = field(default_factory=list)
    fp32_bytes: dict[str, int] = field(default_factory=dict)


def _check_options(opts: QuantizeOptions) -> None:
    for fmt in opts.formats:
        if fmt not in FORMATS:
            raise HartoolError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    for mode in opts.modes:
        if mode not in TFLITE_MODES:
            raise HartoolError(f"unknown mode {mode!r}; choose from {', '.join(TFLITE_MODES)}")


def _job_base(bundle: Bundle, opts: QuantizeOptions, calib: Path) -> dict[str, Any]:
    m = bundle.manifest
    return {"keras": str(bundle.keras_path()), "arch": m.get("arch", "cnn"), "window": m["window"],
            "channels": len(m["channels"]), "opset": opts.opset, "integer_io": opts.integer_io,
            "calib": str(calib), "source": str(bundle.path / "model_fp32.onnx"),
            "metadata": {"hartool.labels": m["labels"], "hartool.window": m["window"], "hartool.stride": m["stride"],
                         "hartool.sample_rate_hz": m["sample_rate_hz"], "hartool.channels": m["channels"]}}


def quantize_bundle(bundle_dir: str | os.PathLike[str], opts: QuantizeOptions,
                    progress: Callable[[str], None] | None = None) -> list[ArtifactResult]:
    """Convert, write, evaluate and register every requested artifact; failures become rows, not exceptions."""
    say = progress or (lambda _msg: None)
    bundle = Bundle.load(bundle_dir)
    bundle.keras_path()  # a bundle without its trained model fails here, before any work
    _check_options(opts)
    from ..data.evalset import bundle_eval_set

    say("preparing test and calibration windows")
    evalset = bundle_eval_set(bundle.manifest, opts.calibration_windows, opts.seed)
    keras_probs_path = bundle.path / "keras_test_probs.npy"
    keras_pred = np.load(keras_probs_path).argmax(1) if keras_probs_path.is_file() else None
    workdir = Path(tempfile.mkdtemp(prefix=".quantize-", dir=bundle.path))
    try:
        calib = workdir / "calib.npy"
        np.save(calib, evalset.x_calib)
        with ConverterPool(workdir, opts.timeout_s) as pool:
            run = _Run(bundle, opts, evalset, _job_base(bundle, opts, calib), workdir, say, keras_pred, pool)
            for fmt, mode, unroll in _plan(opts, run.job["arch"]):
                _produce(run, fmt, mode, unroll)
        _finish(run)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return run.results


def _produce(run: _Run, fmt: str, mode: str, unroll: bool) -> None:
    """Convert, evaluate and register one artifact, appending its row to ``run.results``."""
    results, arch = run.results, run.job["arch"]
    if fmt == "onnx" and mode != "fp32" and "onnx-fp32" not in run.fp32_bytes:
        results.append(ArtifactResult(f"onnx-{mode}", fmt, mode, "failed", error="needs onnx-fp32, which failed"))
        return
    if unroll and not any(r.name == f"tflite-{mode}" and r.status == "failed" for r in results):
        return  # the fused conversion worked; no need for the unrolled fallback
    name = f"{fmt}-{mode}{'-unrolled' if unroll else ''}"
    fname = f"model_{mode}{'_unrolled' if unroll else ''}.{fmt}"
    run.say(f"converting {name}")
    tmp_out = run.workdir / fname
    t0 = time.perf_counter()
    out, err = run.pool.run({**run.job, "format": fmt, "mode": mode, "unroll": unroll, "out": str(tmp_out)})
    convert_s = round(time.perf_counter() - t0, 1)
    if err:
        hint = "; use int16x8 or dynamic" if mode == "int8" and arch in RECURRENT_ARCHS and not unroll else ""
        results.append(ArtifactResult(name, fmt, mode, "failed", error=f"{mode}: {err}{hint}", convert_s=convert_s))
        run.say(f"{name}: {err}")
        return
    res = ArtifactResult(name, fmt, mode, "ok", convert_s=convert_s, ops=out.get("ops"))
    # Evaluated before it enters the bundle: an artifact that does not load is never registered.
    _evaluate(res, tmp_out, run.evalset, run.bundle.manifest, run.keras_pred, run.say)
    results.append(res)
    if res.status != "ok":
        _forget(run.bundle, name, run.bundle.path / fname)
        run.say(f"{name}: {res.error}")
        return
    if fmt == "tflite" and run.opts.tflite_runtime_python:
        res.tflite_runtime = _tflite_runtime_check(run.opts.tflite_runtime_python, tmp_out, run.evalset.x_test[0])
    final = run.bundle.path / fname
    os.replace(tmp_out, final)  # atomic: the artifact appears whole or not at all
    for key, value in file_entry(final, run.bundle.path).items():
        setattr(res, key, value)
    if mode == "fp32":
        run.fp32_bytes[f"{fmt}-fp32"] = res.bytes or 0
    run.bundle.upsert_artifact(res.manifest_entry())
    run.bundle.save()


def _finish(run: _Run) -> None:
    """Sizes against fp32, enrollment data, latencies taken together, the default artifact and its reason."""
    bundle, results = run.bundle, run.results
    for res in results:
        ref = run.fp32_bytes.get(f"{res.format}-fp32")
        if res.bytes and ref:
            res.size_vs_fp32 = res.bytes / ref
    from .embedding import record_embedding  # enrollment: embedding outputs + reference windows

    record_embedding(bundle, [a["name"] for a in bundle.artifacts], run.say, seed=run.opts.seed)
    timed = _time_artifacts(bundle, run.evalset.x_test, run.opts.latency_runs, run.say)
    for res in results:
        if res.status == "ok":
            res.latency_us = bundle.artifact(res.name).get("latency_us")
    # Why `stream` and `benchmark` run what they run by default (hartool.runtime.artifacts).
    bundle.manifest["default_artifact"] = default_artifact_record(bundle.artifacts)
    bundle.manifest["quantize"] = {
        "calibration_windows": int(run.evalset.x_calib.shape[0]), "seed": run.opts.seed,
        "choice_windows": {"from": run.evalset.val_from, "windows": int(run.evalset.y_val.shape[0])},
        "converter_processes": run.pool.started,  # 1 unless a conversion crashed or failed (export/jobs.py)
        "failures": [{"name": r.name, "error": r.error} for r in results if r.status != "ok"],
        "latency": {"runs": run.opts.latency_runs, "rounds": LATENCY_ROUNDS, "timed_together": timed},
    }
    bundle.save()


def _forget(bundle: Bundle, name: str, path: Path) -> None:
    """Drop ``name`` from the bundle: an older entry of that name must not outlive a failed re-run."""
    bundle.remove_artifact(name)
    path.unlink(missing_ok=True)
    bundle.save()


def _plan(opts: QuantizeOptions, arch: str) -> list[tuple[str, str, bool]]:
    """(format, mode, unroll) in dependency order; recurrent integer modes get an unrolled fallback."""
    plan: list[tuple[str, str, bool]] = []
    if "tflite" in opts.formats:
        for mode in opts.modes:
            plan.append(("tflite", mode, False))
            if arch in RECURRENT_ARCHS and mode in INTEGER_MODES:
                plan.append(("tflite", mode, True))
    if "onnx" in opts.formats:
        onnx_modes = [m for m in ONNX_MODES if m in opts.modes]
        if onnx_modes and "fp32" not in onnx_modes:
            onnx_modes.insert(0, "fp32")  # quantized ONNX models are made from the fp32 graph
        plan += [("onnx", m, False) for m in onnx_modes]
    return plan


def _evaluate(res: ArtifactResult, path: Path, evalset: Any, manifest: dict[str, Any], keras_pred: Any,
              say: Callable[[str], None]) -> None:
    """Accuracy and agreement through the runtime interpreter (LiteRT / ORT), never Keras."""
    try:
        pred = load_predictor(path, **contract(manifest))
    except HartoolError as exc:
        res.status, res.error = "failed", f"does not load: {exc}"
        return
    res.input_dtype, res.output_dtype = pred.input_dtype, pred.output_dtype
    res.quantization = _quant_params(pred)
    say(f"evaluating {res.name} on {len(evalset.y_test)} test windows ({pred.backend})")
    y = pred.predict(evalset.x_test).argmax(1)
    res.accuracy = float((y == evalset.y_test).mean())
    res.val_accuracy = float((pred.predict(evalset.x_val).argmax(1) == evalset.y_val).mean())
    res.delta_pp = round(100.0 * (res.accuracy - manifest["metrics"]["test"]["accuracy"]), 3)
    if keras_pred is not None and len(keras_pred) == len(y):
        res.agreement = float((keras_pred == y).mean())


def raise_if_all_failed(results: list[ArtifactResult]) -> None:
    """Raise when nothing at all could be produced: one line naming the first reason."""
    if results and all(r.status != "ok" for r in results):
        raise ExportError(f"no artifact could be produced: {results[0].error}")
