"""The benchmark result JSON (``hartool.benchmark/1``): its documented shape, loading and validation.

Top level::

    {
      "schema": "hartool.benchmark/1",
      "created": "2026-01-01T12:00:00+00:00",          # UTC, ISO 8601
      "machine": {cpu_model, board, cores, cores_usable, arch, os, memory_mb, cpu_governor,
                  python, python_implementation, packages: {distribution: version | null}},
      "settings": {runs, warmup, batch, threads: [int], backends: [str] (measured),
                   requested_backends: [str], artifacts: [str] | null, baseline: "keras" | null,
                   keras_predict_runs, keras_budget_s, recompute_accuracy, seed, timeout_s, hartool_version,
                   input, timer, isolation, ratio_statistic, command?},
      "bundles": [{name, path, arch, labels, window, channels, sample_rate_hz, model_sha256,
                   default_artifact: {name, reason} | null}],
      "results": [ROW, ...],       # one per (bundle, artifact, backend, threads)
      "baselines": [ROW, ...],     # Keras rows ("keras-predict", "keras-call", "keras-tf-function"); empty without --baseline
      "notes": [str]               # optional: what was skipped and why
    }

ROW::

    {
      "bundle": "cnn",                     # bundle folder name (rows of several bundles can be merged)
      "artifact": "tflite-int8",           # manifest artifact name, or "keras-predict" / "keras-call"
      "format": "tflite" | "onnx" | "keras", "mode": "int8", "file": "model_int8.tflite", "sha256": "...",
      "backend": "litert" | "litert-noxnnpack" | "tflite-runtime[-noxnnpack]" | "tf[-noxnnpack]"
                 | "onnxruntime" | "keras-tensorflow",
      "threads": 1,                        # null for Keras (TensorFlow's default thread pools, as users have)
      "method": null | "model.predict(x, verbose=0)" | "model(x, training=False)",
      "status": "ok" | "failed", "error": null | "one line",
      "bytes": 139944, "accuracy": 0.91, "accuracy_source": "manifest" | "recomputed" | null,
      "input_dtype": "int8",
      "import_ms": 80.1,                   # importing the runtime module in the fresh child
      "load_ms": 2.3,                      # model load + allocate (benchmark_model's "init")
      "first_ms": 0.4,                     # first inference after load
      "warmup_avg_us": 60.2,               # mean of the warm-up calls (null with --warmup 0)
      "latency_us": {"mean", "std", "p50", "p90", "p99", "min", "max"},   # per call of `batch` windows
      "throughput_per_s": 16000.0,         # windows per second, back-to-back single-stream calls
      "peak_rss_mb": 95.1,                 # peak RSS (VmHWM) of the child that loaded and ran only this model
      "rss_delta_mb": 3.2,                 # rise of that peak from after the runtime import to the end
      "runs": 1000, "warmup": 50, "batch": 1,   # runs actually timed (Keras: capped, see settings)
      "vs_keras": {"keras-predict": 700.0, "keras-call": 20.0, "keras-tf-function": 5.0}   # Keras p50 / this p50 (× faster); {} if none
    }

Timing fields are null in a failed row. Every number is measured in the same run on the same machine.
"""

from __future__ import annotations

import csv
import io
import json
import os
from numbers import Real
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_text
from ..core.errors import HartoolError
from .latency import STAT_KEYS

SCHEMA = "hartool.benchmark/1"
TOP_KEYS = ("schema", "created", "machine", "settings", "bundles", "results", "baselines")
ROW_KEYS = ("bundle", "artifact", "format", "mode", "backend", "threads", "status", "bytes", "accuracy",
            "load_ms", "first_ms", "warmup_avg_us", "latency_us", "throughput_per_s", "peak_rss_mb", "runs")
ROW_STATUSES = ("ok", "failed")
# The order rows are written in, so a result file reads like the docstring above.
ROW_ORDER = ("bundle", "artifact", "format", "mode", "file", "sha256", "backend", "threads", "method",
             "status", "error", "bytes", "accuracy", "accuracy_source", "input_dtype", "import_ms", "load_ms",
             "first_ms", "warmup_avg_us", "latency_us", "throughput_per_s", "peak_rss_mb", "rss_delta_mb",
             "runs", "warmup", "batch", "vs_keras")


class ResultsError(HartoolError):
    """A benchmark result file is missing, unreadable or not in the ``hartool.benchmark/1`` shape."""


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_row(row: Any, where: str) -> None:
    if not isinstance(row, dict):
        raise ResultsError(f"{where} is not an object")
    missing = [k for k in ROW_KEYS if k not in row]
    if missing:
        raise ResultsError(f"{where} lacks {', '.join(missing)}")
    if row["status"] not in ROW_STATUSES:
        raise ResultsError(f"{where}: status {row['status']!r} is not one of {', '.join(ROW_STATUSES)}")
    if not isinstance(row["artifact"], str) or not isinstance(row["backend"], str):
        raise ResultsError(f"{where}: 'artifact' and 'backend' must be strings")
    if row["status"] != "ok":
        return
    lat = row["latency_us"]
    if not isinstance(lat, dict) or not all(_is_number(lat.get(k)) for k in STAT_KEYS):
        raise ResultsError(f"{where}: 'latency_us' must hold numbers {', '.join(STAT_KEYS)}")
    if not isinstance(row["runs"], int) or row["runs"] < 1:
        raise ResultsError(f"{where}: 'runs' must be a positive integer")
    for key in ("accuracy", "bytes", "peak_rss_mb", "load_ms", "first_ms"):
        if row[key] is not None and not _is_number(row[key]):
            raise ResultsError(f"{where}: {key!r} must be a number or null")


def validate_results(doc: Any, where: str) -> dict[str, Any]:
    """Check a result document's shape; raise one ResultsError naming ``where`` and the first problem."""
    if not isinstance(doc, dict):
        raise ResultsError(f"{where}: not a hartool benchmark result (expected a JSON object)")
    if doc.get("schema") != SCHEMA:
        raise ResultsError(f"{where}: not a hartool benchmark result (schema {doc.get('schema')!r}, "
                           f"expected {SCHEMA!r})")
    missing = [k for k in TOP_KEYS if k not in doc]
    if missing:
        raise ResultsError(f"{where}: result lacks {', '.join(missing)}")
    for key in ("machine", "settings"):
        if not isinstance(doc[key], dict):
            raise ResultsError(f"{where}: {key!r} must be an object")
    for key in ("bundles", "results", "baselines"):
        if not isinstance(doc[key], list):
            raise ResultsError(f"{where}: {key!r} must be a list")
    for key in ("results", "baselines"):
        for i, row in enumerate(doc[key]):
            _check_row(row, f"{where}: {key}[{i}]")
    return doc


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate one result file; every failure is a one-line ResultsError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ResultsError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from exc
    return validate_results(doc, str(path))


def ordered_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its keys in ROW_ORDER (unknown keys last, kept)."""
    return {**{k: row[k] for k in ROW_ORDER if k in row}, **row}


def all_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Artifact rows then baseline rows: tables, CSV, plots and compare treat them alike."""
    return [*doc["results"], *doc["baselines"]]


def merge_results(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One document from several runs of the same machine (e.g. a CNN and an LSTM bundle).

    Machine and settings come from the first; bundle names must differ or their rows would collide.
    """
    if not docs:
        raise ResultsError("nothing to merge")
    names = [b["name"] for d in docs for b in d["bundles"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ResultsError(f"cannot merge results: bundle name(s) {', '.join(dupes)} appear twice")
    merged = {**docs[0], "bundles": [b for d in docs for b in d["bundles"]],
              "results": [r for d in docs for r in d["results"]],
              "baselines": [r for d in docs for r in d["baselines"]]}
    return validate_results(merged, "merged results")


CSV_COLUMNS = ("bundle", "kind", "artifact", "format", "mode", "backend", "threads", "method", "status",
               "bytes",
               "accuracy", "accuracy_source", "import_ms", "load_ms", "first_ms", "warmup_avg_us",
               *(f"{k}_us" for k in STAT_KEYS), "throughput_per_s", "peak_rss_mb", "rss_delta_mb", "runs",
               "warmup", "batch", "x_vs_keras_predict", "x_vs_keras_call", "x_vs_keras_tf_function", "error")


def flat_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat dict per row (latency stats and Keras ratios spread into columns) for CSV and spreadsheets."""
    flat = []
    for kind, rows in (("artifact", doc["results"]), ("baseline", doc["baselines"])):
        for row in rows:
            lat = row.get("latency_us") or {}
            vs = row.get("vs_keras") or {}
            item = {k: row.get(k) for k in CSV_COLUMNS}
            item.update({f"{k}_us": lat.get(k) for k in STAT_KEYS}, kind=kind,
                        x_vs_keras_predict=vs.get("keras-predict"), x_vs_keras_call=vs.get("keras-call"),
                        x_vs_keras_tf_function=vs.get("keras-tf-function"))
            flat.append(item)
    return flat


def write_csv(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``flat_rows(doc)`` as CSV, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat_rows(doc))
    return atomic_write_text(path, buf.getvalue())
