"""Latency benchmark for RESULTS.md: every artifact of the demo bundles, both runtimes, XNNPACK on/off, Keras.

Not part of `make test` (it takes minutes). Run after `make demo`:

    .venv/bin/python benchmarks/latency.py                      # demo-out/bundles/cnn and .../lstm
    .venv/bin/python benchmarks/latency.py bundles/cnn --runs 2000

Writes benchmarks/results/latency.json (a `hartool.benchmark/1` document, so `hartool compare` reads it)
and latency.md next to it, and prints the markdown on stdout.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from hartool.bench.machine import machine_summary
from hartool.bench.run import BenchmarkOptions, run_benchmark
from hartool.bench.schema import all_rows, merge_results
from hartool.core.atomic import atomic_write_json, atomic_write_text
from hartool.core.errors import HartoolError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_BUNDLES = [REPO / "demo-out" / "bundles" / "cnn", REPO / "demo-out" / "bundles" / "lstm"]
DEFAULT_OUT = HERE / "results" / "latency.json"


def _progress(done: int, total: int, label: str, state: dict[str, str] = {}) -> None:  # noqa: B006 - memo
    if state.get("label") != label:
        state["label"] = label
        print(f"[{100 * done // max(total, 1):3d}%] {label}", file=sys.stderr, flush=True)


def _find(doc: dict[str, Any], bundle: str, artifact: str,
          backend: str | None = None) -> dict[str, Any] | None:
    for row in all_rows(doc):
        if (row["bundle"] == bundle and row["artifact"] == artifact and row["status"] == "ok"
                and (backend is None or row["backend"] == backend)):
            return row
    return None


def _p50(row: dict[str, Any]) -> float:
    return row["latency_us"]["p50"]


def _acc(row: dict[str, Any] | None) -> str:
    return "-" if row is None or row.get("accuracy") is None else f"{100 * row['accuracy']:.2f}%"


def markdown_table(doc: dict[str, Any]) -> str:
    lines = ["| bundle | artifact | backend | bytes | accuracy | p50 µs | p99 µs | × vs Keras predict "
             "| × vs Keras tf.function |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in all_rows(doc):
        if row["status"] != "ok":
            lines.append(f"| {row['bundle']} | {row['artifact']} | {row['backend']} | {row['bytes']:,} | "
                         f"{_acc(row)} | failed: {row['error']} | | | |")
            continue
        vs = (row.get("vs_keras") or {}).get("keras-predict")
        vs_graph = (row.get("vs_keras") or {}).get("keras-tf-function")
        lines.append(f"| {row['bundle']} | {row['artifact']} | {row['backend']} | {row['bytes']:,} | "
                     f"{_acc(row)} | "
                     f"{_p50(row):,.1f} | {row['latency_us']['p99']:,.1f} | "
                     f"{'-' if vs is None else f'{vs:,.0f}×'} | {'-' if vs_graph is None else f'{vs_graph:,.1f}×'} |")
    return "\n".join(lines)


def _speedup(slow: dict[str, Any] | None, fast: dict[str, Any] | None, what: str) -> str:
    """'N× ' line for slow.p50 / fast.p50, or why it cannot be given."""
    if slow is None or fast is None:
        return f"- {what}: n/a (a row is missing or failed)"
    return (f"- {what}: **{_p50(slow) / _p50(fast):,.1f}×** "
            f"({_p50(slow):,.1f} µs vs {_p50(fast):,.1f} µs p50)")


def _bundle_for(doc: dict[str, Any], arch: str) -> str | None:
    for b in doc["bundles"]:
        if b.get("arch") == arch or b["name"] == arch:
            return b["name"]
    return None


def headline(doc: dict[str, Any]) -> str:
    """The ratios RESULTS.md quotes, each from rows measured in this run."""
    out = ["### Headline ratios (p50 latency per window, same run, same machine)", ""]
    cnn, lstm = _bundle_for(doc, "cnn"), _bundle_for(doc, "lstm")
    if cnn:
        int8 = _find(doc, cnn, "tflite-int8", "litert")
        out.append(_speedup(_find(doc, cnn, "keras-predict"), int8,
                            "CNN: Keras `model.predict` per window vs int8 in LiteRT"))
        out.append(_speedup(_find(doc, cnn, "keras-call"), int8, "CNN: Keras `model(x)` vs int8 in LiteRT"))
        out.append(_speedup(_find(doc, cnn, "keras-tf-function"), int8,
                            "CNN: Keras as a compiled `tf.function` (the fair baseline) vs int8 in LiteRT"))
        out.append(_speedup(_find(doc, cnn, "tflite-fp32", "litert"), int8,
                            "CNN: int8 vs fp32 speed-up (LiteRT)"))
        out.append(_speedup(_find(doc, cnn, "onnx-fp32", "onnxruntime"),
                            _find(doc, cnn, "onnx-int8", "onnxruntime"),
                            "CNN: int8 vs fp32 speed-up (onnxruntime)"))
    for name in (cnn, lstm):
        if name:
            out.append(_speedup(_find(doc, name, "onnx-fp32", "onnxruntime"),
                                _find(doc, name, "tflite-fp32", "litert"),
                                f"{name}: LiteRT vs onnxruntime, fp32 (ORT time / LiteRT time)"))
    if lstm:
        quantized = [r for r in doc["results"]
                     if r["bundle"] == lstm and r["status"] == "ok" and r["mode"] != "fp32"]
        if quantized:
            best = min(quantized, key=_p50)
            fp32 = _find(doc, lstm, f"{best['format']}-fp32", best["backend"])
            line = _speedup(fp32, best, f"{lstm}: fp32 vs its fastest quantized artifact "
                                        f"({best['artifact']} on {best['backend']})")
            if fp32 is not None and fp32.get("accuracy") is not None and best.get("accuracy") is not None:
                line += (f"; accuracy {100 * (best['accuracy'] - fp32['accuracy']):+.2f} pp, "
                         f"{best['bytes'] / fp32['bytes']:.0%} of the fp32 bytes")
            out.append(line)
        else:
            out.append(f"- {lstm}: no quantized artifact was measured")
    return "\n".join(out)


def keras_runs(doc: dict[str, Any]) -> str:
    """Keras rows time fewer calls (model.predict is slow; an eager LSTM call too): say how many."""
    parts = [f"{b['bundle']} {b['method']}: {b['runs']}" for b in doc["baselines"] if b["status"] == "ok"]
    return f" Keras timed runs: {'; '.join(parts)}." if parts else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="*", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--no-keras", action="store_true",
                        help="Skip the Keras baselines (no TensorFlow here).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    opts = BenchmarkOptions(backends=("all",), threads=(1,), runs=args.runs, warmup=args.warmup,
                            baseline=None if args.no_keras else "keras")
    try:
        docs = []
        for bundle in args.bundles:
            print(f"benchmarking {bundle}", file=sys.stderr)
            docs.append(run_benchmark(bundle, opts, progress=_progress))
        doc = merge_results(docs)
    except HartoolError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    command = shlex.join(["python", "benchmarks/latency.py", *(sys.argv[1:] if argv is None else argv)])
    doc["settings"]["command"] = command
    atomic_write_json(args.out, doc)
    md = "\n".join([
        f"Measured with `{command}` on {machine_summary(doc['machine'])}, {doc['created']}: "
        f"{opts.runs} timed runs per row after {opts.warmup} warm-up, 1 thread, batch 1, each model in "
        f"its own process.{keras_runs(doc)}",
        "",
        markdown_table(doc),
        "",
        headline(doc),
        "",
    ])
    atomic_write_text(args.out.with_suffix(".md"), md)
    print(md)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
