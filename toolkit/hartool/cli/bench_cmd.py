"""`hartool benchmark` (LiteRT benchmark_model-style numbers per artifact) and `hartool compare`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from .common import emit_json, pct, status, table


def _num(value: float | None, fmt: str = ",.1f") -> str:
    return "-" if value is None else format(value, fmt)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}x"


def benchmark_table(doc: dict[str, Any]) -> str:
    """benchmark_model's numbers per row: init, first, warm-up avg, inference avg/std/percentiles (µs)."""
    rows = doc["results"] + doc["baselines"]
    keras = [b["artifact"] for b in doc["baselines"]]
    several = len(doc["bundles"]) > 1
    failed = any(r["status"] != "ok" for r in rows)
    headers = [*(["bundle"] if several else []), "artifact", "backend", "thr", "bytes", "accuracy", "init ms",
               "first ms", "warmup us", "avg us", "std", "p50", "p90", "p99", "min", "max", "win/s", "RSS MB",
               *(f"x {name}" for name in keras), *(["notes"] if failed else [])]
    out = []
    for r in rows:
        lat = r.get("latency_us") or {}
        cells = [*([r["bundle"]] if several else []), r["artifact"], r["backend"],
                 "-" if r["threads"] is None else r["threads"], _num(r["bytes"], ",d"), pct(r["accuracy"]),
                 _num(r["load_ms"], ".2f"), _num(r["first_ms"], ".2f"), _num(r["warmup_avg_us"]),
                 *(_num(lat.get(k)) for k in ("mean", "std", "p50", "p90", "p99", "min", "max")),
                 _num(r["throughput_per_s"], ",.0f"), _num(r["peak_rss_mb"]),
                 *(_ratio((r.get("vs_keras") or {}).get(name)) for name in keras)]
        if failed:
            cells.append(f"FAILED: {r['error']}" if r["status"] != "ok" else "")
        out.append(cells)
    return table(headers, out)


class _Bar:
    """Adapts run_benchmark's ``progress(done, total, label)`` to a click progress bar on stderr."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def __call__(self, done: int, total: int, label: str) -> None:
        self.bar.update(max(0, done - self.bar.pos), label)


# A tail percentile is worth printing with at least ten runs beyond it: p90 needs 100 runs, p99 1000.
_TAIL_RUNS = {"p90": 100, "p99": 1000}


def runs_warning(runs: int) -> str | None:
    """The warning for ``runs`` too few for the tail percentiles the table prints (None: enough)."""
    short = [f"{name} needs >= {need}" for name, need in _TAIL_RUNS.items() if runs < need]
    if not short:
        return None
    return (f"warning: --runs {runs} is too few for the tail percentiles printed ({', '.join(short)} runs: ten "
            "beyond the percentile); they are noisy")


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--artifacts", default="",
              help="Comma list of artifact names, or 'default' for the one `stream` runs (default: all in the bundle).")
@click.option("--runs", type=int, default=1000, show_default=True,
              help="Timed runs per artifact, backend and thread count, after warm-up "
                   "(percentiles need >= 1000).")
@click.option("--warmup", type=int, default=50, show_default=True,
              help="Untimed runs after the first inference.")
@click.option("--threads", default="1", show_default=True,
              help="Comma list of interpreter thread counts, e.g. 1,2,4.")
@click.option("--backend", "backends", default="all", show_default=True,
              help="Comma list: all, litert, litert-noxnnpack, tflite-runtime, tflite-runtime-noxnnpack, tf, "
                   "tf-noxnnpack, onnxruntime. 'all' = every installed runtime, TFLite with and without "
                   "XNNPACK.")
@click.option("--batch", type=int, default=1, show_default=True, help="Windows per inference call.")
@click.option("--baseline", type=click.Choice(["keras"]), default=None,
              help="Also time model.predict(x) and model(x) on one window (needs TensorFlow).")
@click.option("--keras-predict-runs", type=int, default=200, show_default=True,
              help="Timed runs for model.predict (tens of ms each); model(x) gets --runs.")
@click.option("--keras-budget", "keras_budget_s", type=float, default=60, show_default=True,
              help="Seconds of timed runs per Keras method at most (an eager LSTM call can take a second).")
@click.option("--recompute-accuracy", is_flag=True,
              help="Re-evaluate each artifact on the bundle's test windows (needs the dataset) instead of "
                   "reading accuracy from the manifest.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the random input windows.")
@click.option("--timeout", "timeout_s", type=float, default=600, show_default=True,
              help="Seconds allowed per measured model (each runs in its own process).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the result JSON here.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None,
              help="Write one CSV row per result.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None,
              help="Write a latency-vs-accuracy PNG (marker area = bytes); needs matplotlib.")
@click.option("--json", "as_json", is_flag=True, help="Print the result JSON on stdout instead of the table.")
@click.option("--target", "targets", multiple=True, type=click.Choice(["cortex-m4", "cortex-m0plus", "rv32imc"]),
              help="Instead, export the C library (hartool export c) and report flash/RAM per microcontroller "
                   "target; cortex-m4 also runs under qemu (instructions per window). Repeatable.")
def benchmark(bundle: Path, artifacts: str, runs: int, warmup: int, threads: str, backends: str, batch: int,
              baseline: str | None, keras_predict_runs: int, keras_budget_s: float, recompute_accuracy: bool,
              seed: int, timeout_s: float, out: Path | None, csv_path: Path | None, plot_path: Path | None,
              as_json: bool, targets: tuple[str, ...]) -> None:
    """Measure size, load time, latency percentiles, throughput, peak RSS and accuracy of BUNDLE's artifacts.

    Each (artifact, backend, threads) runs in a fresh process, so its load time and peak memory are its own.
    Inputs are seeded random windows; accuracy comes from the manifest (or --recompute-accuracy).

    \b
    Example:
      hartool benchmark bundles/cnn --out results/laptop.json
      hartool benchmark bundles/cnn --artifacts tflite-int8 --threads 1,2,4 --baseline keras
      hartool compare results/laptop.json results/pi.json --plot pareto.png
    """
    if targets:
        from .export_cmd import mcu_benchmark

        return mcu_benchmark(bundle, targets, seed, as_json)
    from ..bench.run import BenchmarkOptions, parse_threads, raise_if_nothing_measured

    if plot_path is not None:
        from ..bench.plots import require_matplotlib

        require_matplotlib()
    opts = BenchmarkOptions(artifacts=tuple(a.strip() for a in artifacts.split(",") if a.strip()),
                            backends=tuple(b.strip() for b in backends.split(",") if b.strip()),
                            threads=parse_threads(threads), runs=runs, warmup=warmup, batch=batch,
                            baseline=baseline, keras_predict_runs=keras_predict_runs,
                            keras_budget_s=keras_budget_s, recompute_accuracy=recompute_accuracy, seed=seed,
                            timeout_s=timeout_s)
    doc = _measure(bundle, opts)
    _write_outputs(doc, out, csv_path, plot_path)
    if as_json:
        emit_json(doc)
    else:
        click.echo(benchmark_table(doc))
    raise_if_nothing_measured(doc)


def _measure(bundle: Path, opts: Any) -> dict[str, Any]:
    """Plan (every input error surfaces here, before any output), run with a progress bar, return the result."""
    from ..bench.machine import machine_info, machine_summary
    from ..bench.run import execute_plan, plan_benchmark

    plan = plan_benchmark(bundle, opts)
    status(f"machine: {machine_summary(machine_info())}")
    status(f"benchmarking {bundle}: {len(plan.jobs)} measurements, {opts.runs} timed runs each after "
           f"{opts.warmup} warm-up, batch {opts.batch}")
    few = runs_warning(opts.runs)
    if few:
        status(few)
    with click.progressbar(length=plan.total_calls, label="measuring", file=sys.stderr, show_pos=False,
                           item_show_func=lambda item: item) as bar:
        doc = execute_plan(plan, progress=_Bar(bar))
    doc["settings"]["command"] = shlex.join(["hartool", *sys.argv[1:]])
    for note in doc["notes"]:
        status(note)
    default = doc["bundles"][0].get("default_artifact")
    if default:
        status(f"default artifact (what stream runs): {default['name']}: {default['reason']}")
    return doc


def _write_outputs(doc: dict[str, Any], out: Path | None, csv_path: Path | None, plot_path: Path | None) -> None:
    from ..bench.schema import write_csv
    from ..core.atomic import atomic_write_json

    if out is not None:
        atomic_write_json(out, doc)
        status(f"wrote {out}")
    if csv_path is not None:
        write_csv(doc, csv_path)
        status(f"wrote {csv_path}")
    if plot_path is not None:
        from ..bench.plots import pareto_plot

        pareto_plot([(doc["bundles"][0]["name"], doc)], plot_path)
        status(f"wrote {plot_path}")


def compare_table(comparison: dict[str, Any]) -> str:
    """Per file p50/p99/accuracy, then each file's time ratio to A (and to --ref when given)."""
    labels = [f["label"] for f in comparison["files"]]
    several = any(r["bundle"] for r in comparison["rows"])
    ref = comparison["reference"] is not None
    headers = [*(["bundle"] if several else []), "artifact", "backend", "thr"]
    for label in labels:
        headers += [f"{label} p50 us", f"{label} p99 us", f"{label} acc"]
    headers += [f"{label}/A {stat}" for label in labels[1:] for stat in ("p50", "p99")]
    headers += [f"{label} p50/ref" for label in labels] if ref else []
    rows = []
    for r in comparison["rows"]:
        cells: list[Any] = [*([r["bundle"]] if several else []), r["artifact"], r["backend"],
                            "-" if r["threads"] is None else r["threads"]]
        for c in r["cells"]:
            if c is None:
                cells += ["-", "-", "-"]
            elif c["status"] != "ok":
                cells += ["failed", "-", "-"]
            else:
                cells += [_num(c["p50_us"]), _num(c["p99_us"]), pct(c["accuracy"])]
        for i in range(1, len(labels)):
            cells += [_ratio(r["ratio_vs_first"][i]), _ratio(r["p99_ratio_vs_first"][i])]
        cells += [_ratio(v) for v in r["ratio_vs_ref"]] if ref else []
        rows.append(cells)
    return table(headers, rows)


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--ref", default=None, metavar="ARTIFACT[/BACKEND]",
              help="Also give each row's time ratio to this row of the same file, e.g. tflite-fp32 "
                   "(int8 vs fp32 per backend) or onnx-fp32/onnxruntime (LiteRT vs ORT).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None,
              help="Write a latency-vs-accuracy PNG of every file (marker area = bytes); needs matplotlib.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON on stdout.")
def compare(results: tuple[Path, ...], ref: str | None, plot_path: Path | None, as_json: bool) -> None:
    """Compare benchmark JSON files side by side; ratios are times (B/A = 0.5: B twice as fast as A).

    \b
    Example:
      hartool compare results/laptop.json results/pi.json
      hartool compare results/pi.json --ref tflite-fp32 --plot pareto.png
    """
    from ..bench.compare import compare_files

    if plot_path is not None:
        from ..bench.plots import require_matplotlib

        require_matplotlib()
    comparison, docs = compare_files(list(results), ref)
    for warning in comparison["warnings"]:
        status(f"warning: {warning}")
    if plot_path is not None:
        from ..bench.plots import pareto_plot

        pareto_plot([(f["label"], d) for f, d in zip(comparison["files"], docs, strict=True)], plot_path)
        status(f"wrote {plot_path}")
    if as_json:
        emit_json(comparison)
        return
    for f in comparison["files"]:
        click.echo(f"{f['label']} = {f['path']} ({f['created']}; {f['machine']})")
    click.echo(compare_table(comparison))
