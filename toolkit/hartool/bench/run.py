"""`run_benchmark`: every (artifact, backend, threads) of a bundle measured in its own child process."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..core.bundle import Bundle
from ..core.child import child_env, describe_exit
from ..core.errors import HartoolError
from ..runtime.artifacts import choice_reason, choose_artifact, contract
from ..runtime.backends import ONNX_BACKENDS, TFLITE_BACKENDS, available_backends
from .child import KERAS_METHODS, NO_XNNPACK, PROGRESS_PREFIX, job_calls, split_backend
from .latency import INPUT_DESCRIPTION
from .machine import machine_info
from .schema import SCHEMA, ordered_row, validate_results

CHILD = "hartool.bench.child"
BASELINES = ("keras",)
# Every name --backend accepts: each TFLite interpreter with XNNPACK on (default) or off, and onnxruntime.
BACKEND_NAMES = (*TFLITE_BACKENDS, *(f"{b}{NO_XNNPACK}" for b in TFLITE_BACKENDS), *ONNX_BACKENDS)
RATIO_STATISTIC = "p50"
# Fields a row has before (or without) measurement; the child fills the timing ones.
TIMING_FIELDS = ("input_dtype", "import_ms", "load_ms", "first_ms", "warmup_avg_us", "latency_us",
                 "throughput_per_s", "peak_rss_mb", "rss_delta_mb", "runs", "warmup", "batch")

Progress = Callable[[int, int, str], None]
"""``progress(done, total, label)``: inference calls done so far across the whole run, and what runs now."""


@dataclass(frozen=True)
class BenchmarkOptions:
    """Options for `run_benchmark`: used by `hartool benchmark`, benchmarks/latency.py and the Python API."""

    artifacts: tuple[str, ...] = ()          # empty: every artifact in the manifest
    backends: tuple[str, ...] = ("all",)     # "all": every installed runtime, TFLite with and without XNNPACK
    threads: tuple[int, ...] = (1,)
    runs: int = 1000
    warmup: int = 50
    batch: int = 1
    baseline: str | None = None              # "keras": also time model.predict and model(x)
    keras_predict_runs: int = 200
    keras_budget_s: float = 60.0             # per Keras method: timed runs stop after this long
    recompute_accuracy: bool = False
    seed: int = 0
    timeout_s: float = 600.0                 # per child process

    def validate(self) -> None:
        if self.runs < 1:
            raise HartoolError(f"--runs must be >= 1 (got {self.runs})")
        if self.warmup < 0:
            raise HartoolError(f"--warmup must be >= 0 (got {self.warmup})")
        if self.batch < 1:
            raise HartoolError(f"--batch must be >= 1 (got {self.batch})")
        if not self.threads or any(t < 1 for t in self.threads):
            given = ",".join(map(str, self.threads))
            raise HartoolError(f"--threads must be positive integers (got {given})")
        if self.keras_predict_runs < 1 or self.keras_budget_s <= 0:
            raise HartoolError("keras_predict_runs and keras_budget_s must be positive")
        if self.baseline is not None and self.baseline not in BASELINES:
            raise HartoolError(f"unknown baseline {self.baseline!r}; choose from {', '.join(BASELINES)}")
        bad = [b for b in self.backends if b != "all" and b not in BACKEND_NAMES]
        if bad or not self.backends:
            raise HartoolError(f"unknown backend {', '.join(bad) or '(none)'}; choose from all, "
                               f"{', '.join(BACKEND_NAMES)}")


def parse_threads(value: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> ``(1, 2, 4)`` with a one-line error for anything else."""
    try:
        threads = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise HartoolError(f"--threads must be a comma list of integers like 1,2,4 (got {value!r})") from exc
    if not threads:
        raise HartoolError(f"--threads must be a comma list of integers like 1,2,4 (got {value!r})")
    return tuple(dict.fromkeys(threads))  # "1,1" would measure the same thing twice


def resolve_backends(requested: tuple[str, ...], fmt: str) -> list[str]:
    """The backends that will run an artifact of format ``fmt``; a requested one that is missing is an error.
    """
    installed = available_backends(fmt)
    names: list[str] = []
    for name in requested:
        if name == "all":
            # TensorFlow's interpreter is LiteRT again at TF's start-up cost: used only when nothing else is.
            bases = [b for b in installed if b != "tf"] or installed
            names += [v for b in bases for v in ((b, f"{b}{NO_XNNPACK}") if fmt == "tflite" else (b,))]
            continue
        base, _ = split_backend(name)
        runs_fmt = "onnx" if base in ONNX_BACKENDS else "tflite"
        if runs_fmt != fmt:
            continue
        if base not in installed:
            raise HartoolError(f"backend {name} is not installed here (installed for {fmt}: "
                               f"{', '.join(installed) or 'none'})")
        names.append(name)
    return list(dict.fromkeys(names))


def _empty_row(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"method": None, "status": "ok", "error": None, "accuracy_source": None,
                           "vs_keras": {}, **dict.fromkeys(TIMING_FIELDS)}
    row.update(fields)
    if row.get("accuracy") is not None:
        row["accuracy_source"] = "manifest"
    return row


def _describe_failure(returncode: int, stderr: str, timed_out: bool, timeout_s: float) -> str:
    if timed_out:
        return f"timed out after {timeout_s:.0f} s"
    return describe_exit(returncode, stderr)


def run_child(job: dict[str, Any], workdir: Path, timeout_s: float,
              on_calls: Callable[[int], None] | None = None
              ) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Run one measurement job in a fresh python; returns (rows, None) or (None, one-line reason)."""
    jobdir = Path(tempfile.mkdtemp(prefix="job-", dir=workdir))
    job = {**job, "result": str(jobdir / "result.json")}
    job_path = jobdir / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    timed_out = threading.Event()
    # stderr goes to a file: TensorFlow can log more than a pipe holds while we read stdout for progress.
    with open(jobdir / "stderr.txt", "w+", encoding="utf-8", errors="replace") as err:
        proc = subprocess.Popen([sys.executable, "-m", CHILD, str(job_path)], stdout=subprocess.PIPE,
                                stderr=err, text=True, env=child_env(tf_defaults=job["kind"] == "keras"))

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                parts = line.split()
                if on_calls and len(parts) == 3 and parts[0] == PROGRESS_PREFIX:
                    on_calls(int(parts[1]))
            returncode = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        stderr = err.read()
    result = Path(job["result"])
    if returncode != 0 or not result.is_file():
        return None, _describe_failure(returncode, stderr, timed_out.is_set(), timeout_s)
    return json.loads(result.read_text(encoding="utf-8"))["rows"], None


def _bundle_info(bundle: Bundle) -> dict[str, Any]:
    m = bundle.manifest
    return {"name": bundle.path.resolve().name, "path": str(bundle.path), "arch": m.get("arch"),
            "labels": bundle.labels, "window": bundle.window,
            "channels": [c["name"] for c in bundle.channels],
            "sample_rate_hz": bundle.sample_rate_hz, "model_sha256": (m.get("model") or {}).get("sha256"),
            "default_artifact": _default_artifact(bundle)}


def _default_artifact(bundle: Bundle) -> dict[str, str] | None:
    """What `stream` runs by default and why (hartool.runtime.artifacts); None when nothing is runnable."""
    try:
        entry = choose_artifact(bundle)
    except HartoolError:
        return None
    return {"name": entry["name"], "reason": choice_reason(bundle, entry)}


def _settings(opts: BenchmarkOptions, backends: list[str]) -> dict[str, Any]:
    settings = asdict(opts)
    settings.update(threads=list(opts.threads), artifacts=list(opts.artifacts) or None,
                    requested_backends=list(opts.backends), backends=backends,
                    hartool_version=__version__, input=INPUT_DESCRIPTION,
                    timer="time.perf_counter_ns around each predict call, including float->int8 input "
                          "quantization where the model takes integers",
                    isolation="one fresh child process per (artifact, backend, threads) and one for Keras",
                    ratio_statistic=RATIO_STATISTIC)
    return settings


def _add_keras_ratios(results: list[dict[str, Any]], baselines: list[dict[str, Any]]) -> None:
    """``vs_keras[name]`` = Keras p50 / artifact p50: how many times faster than that Keras call."""
    for row in results:
        if row["status"] != "ok":
            continue
        for base in baselines:
            if base["status"] == "ok" and base["bundle"] == row["bundle"]:
                ours = row["latency_us"][RATIO_STATISTIC]
                theirs = base["latency_us"][RATIO_STATISTIC]
                row["vs_keras"][base["artifact"]] = round(theirs / ours, 2) if ours > 0 else None


@dataclass
class Job:
    """One child process: its job file contents, the row fields known beforehand, and a progress label."""

    spec: dict[str, Any]
    template: dict[str, Any]
    label: str

    @property
    def calls(self) -> int:
        return job_calls(self.spec)


@dataclass
class BenchmarkPlan:
    """Everything checked and decided before any timing, so bad input fails in one line, immediately."""

    bundle: Bundle
    opts: BenchmarkOptions
    info: dict[str, Any]
    jobs: list[Job]
    notes: list[str]
    evalset: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def total_calls(self) -> int:
        return sum(job.calls for job in self.jobs)


def _artifact_pairs(bundle: Bundle, opts: BenchmarkOptions) -> tuple[list[tuple[dict[str, Any], str, int]],
                                                                      list[str]]:
    """(artifact entry, backend, threads) triples in manifest order, plus notes about what was skipped."""
    names = dict.fromkeys(opts.artifacts)
    # "default": the artifact `stream` would run (fastest within 0.3 pp of the best validation accuracy).
    entries = [choose_artifact(bundle) if name == "default" else bundle.artifact(name) for name in names] \
        if names else bundle.artifacts
    for entry in entries:
        bundle.artifact_path(entry)  # a missing or corrupt file is an error before minutes of timing
    pairs, notes = [], []
    for entry in entries:
        backends = resolve_backends(opts.backends, entry["format"])
        if not backends:
            notes.append(f"{entry['name']}: no selected backend runs {entry['format']} models; skipped")
        pairs += [(entry, backend, t) for backend in backends for t in opts.threads]
    return pairs, notes


def plan_benchmark(bundle_dir: str | os.PathLike[str], opts: BenchmarkOptions) -> BenchmarkPlan:
    """Validate options, bundle, artifacts (sha256), backends and the Keras baseline; nothing is timed yet."""
    opts.validate()
    bundle = Bundle.load(bundle_dir)
    pairs, notes = _artifact_pairs(bundle, opts)
    keras_job = opts.baseline == "keras"
    if keras_job:
        bundle.keras_path()
        if importlib.util.find_spec("keras") is None:
            raise HartoolError("--baseline keras needs Keras and TensorFlow (pip install 'hartool[train]')")
    if not pairs and not keras_job:
        have = ", ".join(a["name"] for a in bundle.artifacts)
        raise HartoolError(f"{bundle.path}: nothing to benchmark (artifacts: {have or 'none'}; "
                           f"run 'hartool quantize {bundle.path}' first)")
    info = _bundle_info(bundle)
    # contract(): (window, channels) for raw-window models, (None, n_features) for feature models.
    common = {**contract(bundle.manifest),
              "runs": opts.runs, "warmup": opts.warmup, "batch": opts.batch, "seed": opts.seed,
              "keras_predict_runs": opts.keras_predict_runs, "keras_budget_s": opts.keras_budget_s}
    jobs = []
    for entry, backend, threads in pairs:
        row = _empty_row(bundle=info["name"], artifact=entry["name"], format=entry["format"],
                         mode=entry["mode"], file=entry["file"], sha256=entry["sha256"], backend=backend,
                         threads=threads, bytes=entry["bytes"], accuracy=entry.get("accuracy"))
        spec = {**common, "kind": "artifact", "path": str(bundle.artifact_path(entry, verify=False)),
                "backend": backend, "threads": threads}
        jobs.append(Job(spec, row, f"{entry['name']} {backend} x{threads}"))
    if keras_job:
        kpath = bundle.keras_path()
        row = _empty_row(bundle=info["name"], format="keras", mode="fp32", file=kpath.name, backend="keras",
                         sha256=(bundle.manifest.get("model") or {}).get("sha256"), threads=None,
                         bytes=kpath.stat().st_size,
                         accuracy=bundle.manifest["metrics"].get("test", {}).get("accuracy"))
        jobs.append(Job({**common, "kind": "keras", "path": str(kpath)}, row, "keras baseline"))
    evalset = None
    if opts.recompute_accuracy:
        from ..data.evalset import bundle_eval_set  # needs the dataset, so only on request

        full = bundle_eval_set(bundle.manifest)
        evalset = (full.x_test, full.y_test)
    return BenchmarkPlan(bundle, opts, info, jobs, notes, evalset)


def execute_plan(plan: BenchmarkPlan, progress: Progress | None = None) -> dict[str, Any]:
    """Run every job of ``plan`` in its own child and return the ``hartool.benchmark/1`` document."""
    workdir = Path(tempfile.mkdtemp(prefix="hartool-bench-"))
    try:
        evalset_path = None
        if plan.evalset is not None:
            evalset_path = str(workdir / "evalset.npz")
            np.savez(evalset_path, x=plan.evalset[0], y=plan.evalset[1])
        results, baselines = _run_jobs(plan.jobs, workdir, plan.opts.timeout_s, progress, evalset_path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _add_keras_ratios(results, baselines)
    doc = {"schema": SCHEMA, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": machine_info(),
           "settings": _settings(plan.opts, sorted({r["backend"] for r in results})),
           "bundles": [plan.info], "results": results, "baselines": baselines, "notes": plan.notes}
    return validate_results(doc, "benchmark output")


def run_benchmark(bundle_dir: str | os.PathLike[str], opts: BenchmarkOptions,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Measure a bundle's artifacts (and optionally Keras) and return a ``hartool.benchmark/1`` document."""
    return execute_plan(plan_benchmark(bundle_dir, opts), progress)


def _run_jobs(jobs: list[Job], workdir: Path, timeout_s: float, progress: Progress | None,
              evalset_path: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    total = sum(job.calls for job in jobs)
    results: list[dict[str, Any]] = []
    baselines: list[dict[str, Any]] = []
    done = 0
    for job in jobs:
        on_calls = None
        if progress:
            progress(done, total, job.label)
            on_calls = partial(_advance, progress, done, total, job.label)
        measured, error = run_child({**job.spec, "evalset": evalset_path}, workdir, timeout_s, on_calls)
        done += job.calls
        if job.spec["kind"] == "keras":
            parts = measured or [{"artifact": name, "method": method} for name, method in KERAS_METHODS]
            target = baselines
        else:
            parts = measured or [{}]
            target = results
        for part in parts:
            row = {**job.template, "vs_keras": {}, **part}
            if error:
                row.update(status="failed", error=error)
            elif evalset_path is not None:
                row["accuracy_source"] = "recomputed"
            target.append(ordered_row(row))
    if progress:
        progress(total, total, "done")
    return results, baselines


def _advance(progress: Progress, start: int, total: int, label: str, calls: int) -> None:
    progress(start + calls, total, label)


def raise_if_nothing_measured(doc: dict[str, Any]) -> None:
    """One line naming the first reason when no row at all could be measured."""
    rows = [*doc["results"], *doc["baselines"]]
    if rows and all(r["status"] != "ok" for r in rows):
        raise HartoolError(f"nothing could be benchmarked: {rows[0]['artifact']} on {rows[0]['backend']}: "
                           f"{rows[0]['error']}")
