"""Child process that measures one model, so its load time and peak RSS are its own.

Usage: ``python -m hartool.bench.child JOB``. The parent (hartool.bench.run) writes JOB as JSON; the child
streams ``hartool-progress DONE TOTAL`` lines on stdout, writes ``{"rows": [...]}`` to ``job["result"]`` and
exits 0; a domain error is one line on stderr and exit status 2. Only the Keras job imports TensorFlow, and
only in its own process.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import HartoolError
from ..core.rss import peak_rss_mb
from ..runtime.backends import TFLITE_MODULES, load_predictor
from .latency import input_pool, time_calls

PROGRESS_PREFIX = "hartool-progress"
NO_XNNPACK = "-noxnnpack"
DOMAIN_ERROR_STATUS = 2
KERAS_WARMUP = 10
KERAS_METHODS = (
    ("keras-predict", "model.predict(x, verbose=0)"),
    ("keras-call", "model(x, training=False)"),
    # The fair Keras baseline: a traced graph with a fixed input signature, no per-call Python dispatch.
    ("keras-tf-function", "tf.function(lambda x: model(x, training=False), input_signature=[x spec])"),
)


def split_backend(name: str) -> tuple[str, bool]:
    """``"litert-noxnnpack"`` -> ``("litert", False)``: the runtime plus whether XNNPACK is on."""
    if name.endswith(NO_XNNPACK):
        return name[: -len(NO_XNNPACK)], False
    return name, True


def keras_plan(job: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    """(name, method, runs, warmup) per Keras method.

    model.predict costs tens of ms per call (it sets up a data pipeline each time), so it gets
    ``keras_predict_runs``; both get at most KERAS_WARMUP warm-up calls, which is all tracing needs.
    """
    caps = {"keras-predict": job["keras_predict_runs"], "keras-call": job["runs"], "keras-tf-function": job["runs"]}
    return [(name, method, min(job["runs"], caps[name]), min(job["warmup"], KERAS_WARMUP))
            for name, method in KERAS_METHODS]


def job_calls(job: dict[str, Any]) -> int:
    """How many inference calls a job makes at most (first + warm-up + timed), for the progress total."""
    if job["kind"] == "keras":
        return sum(1 + warmup + runs for _, _, runs, warmup in keras_plan(job))
    return 1 + job["warmup"] + job["runs"]


def _reporter(offset: int, total: int) -> Callable[[int], None]:
    def tick(done: int) -> None:
        sys.stdout.write(f"{PROGRESS_PREFIX} {offset + done} {total}\n")
        sys.stdout.flush()
    return tick


def _load_eval(job: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    if not job.get("evalset"):
        return None
    with np.load(job["evalset"]) as data:
        return data["x"], data["y"]


def _accuracy(predict: Callable[[np.ndarray], Any], evalset: tuple[np.ndarray, np.ndarray]) -> float:
    x, y = evalset
    return float((np.asarray(predict(x)).argmax(1) == y).mean())


def measure_artifact(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Import the runtime, load the model, time it; every number comes from this (fresh) process."""
    base, xnnpack = split_backend(job["backend"])
    pool = input_pool(job["window"], job["channels"], job["batch"], job["seed"])
    # load_predictor's own backend -> module table, so the import timed here is the one it would pay.
    module = "onnxruntime" if base == "onnxruntime" else TFLITE_MODULES[base]
    t0 = time.perf_counter()
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise HartoolError(f"backend {job['backend']} is not installed ({exc})") from exc
    import_ms = (time.perf_counter() - t0) * 1e3
    rss_base = peak_rss_mb()
    t0 = time.perf_counter()
    pred = load_predictor(job["path"], backend=base, threads=job["threads"], window=job["window"],
                          channels=job["channels"], n_classes=job["n_classes"], xnnpack=xnnpack)
    load_ms = (time.perf_counter() - t0) * 1e3
    timing = time_calls(pred.predict, pool, job["runs"], job["warmup"], _reporter(0, job_calls(job)))
    peak = peak_rss_mb()
    row = {"backend": pred.backend, "input_dtype": pred.input_dtype, "import_ms": round(import_ms, 2),
           "load_ms": round(load_ms, 3), **timing.as_row(), "peak_rss_mb": peak,
           "rss_delta_mb": None if peak is None or rss_base is None else round(peak - rss_base, 2)}
    evalset = _load_eval(job)
    if evalset is not None:
        row["accuracy"] = _accuracy(pred.predict, evalset)
    return [row]


def measure_keras(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The two ways people run a Keras model today, timed on the same inputs as the artifacts."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    pool = input_pool(job["window"], job["channels"], job["batch"], job["seed"])
    t0 = time.perf_counter()
    import keras

    import_ms = (time.perf_counter() - t0) * 1e3
    rss_base = peak_rss_mb()
    t0 = time.perf_counter()
    model = keras.saving.load_model(job["path"], compile=False)
    load_ms = (time.perf_counter() - t0) * 1e3
    import tensorflow as tf

    graph = tf.function(lambda x: model(x, training=False),
                        input_signature=[tf.TensorSpec(pool.shape[1:], tf.float32)])
    calls: dict[str, Callable[[np.ndarray], Any]] = {
        "keras-predict": lambda x: model.predict(x, verbose=0),
        "keras-call": lambda x: model(x, training=False),
        "keras-tf-function": lambda x: graph(x).numpy(),
    }
    total, offset, rows = job_calls(job), 0, []
    for name, method, runs, warmup in keras_plan(job):
        timing = time_calls(calls[name], pool, runs, warmup, _reporter(offset, total),
                            budget_s=job["keras_budget_s"])
        offset += 1 + warmup + runs
        rows.append({"artifact": name, "method": method, "backend": f"keras-{keras.config.backend()}",
                     "import_ms": round(import_ms, 2), "load_ms": round(load_ms, 3), **timing.as_row()})
    peak = peak_rss_mb()
    evalset = _load_eval(job)
    accuracy = None if evalset is None else _accuracy(lambda x: model.predict(x, batch_size=256, verbose=0),
                                                       evalset)
    for row in rows:
        # One process ran both methods, so they share load time and peak memory.
        row.update(peak_rss_mb=peak,
                   rss_delta_mb=None if peak is None or rss_base is None else round(peak - rss_base, 2))
        if accuracy is not None:
            row["accuracy"] = accuracy
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the job file named in ``argv``; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    measure = measure_keras if job["kind"] == "keras" else measure_artifact
    try:
        rows = measure(job)
    except HartoolError as exc:
        sys.stderr.write(f"{exc}\n")
        return DOMAIN_ERROR_STATUS
    Path(job["result"]).write_text(json.dumps({"rows": rows}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
