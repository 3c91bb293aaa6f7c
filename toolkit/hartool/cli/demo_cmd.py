"""`hartool demo`: the whole chain on the embedded dataset, with a summary table at the end."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import click

from .common import pct, status, table
from .options import SmoothType


@click.command()
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Folder for bundles, benchmark JSON, plots and summary.json.")
@click.option("--fast", is_flag=True, help="Few epochs and runs: a few minutes instead of ~20.")
@click.option("--subject", type=click.IntRange(min=1), default=9, show_default=True, help="Held-out test subject to stream.")
@click.option("--stream-seconds", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Seconds of the live-pace excerpt.")
@click.option("--speed", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Play the excerpt at real time x SPEED (the whole subject always streams as fast as possible).")
@click.option("--smooth", "smoothing", type=SmoothType(), default=None,
              help="Smoothing of the streamed labels (default: the stream's default; see hartool stream --help).")
@click.option("--epochs", type=int, default=None, hidden=True)
@click.option("--max-windows", type=int, default=None, hidden=True)
@click.option("--bench-runs", type=int, default=None, hidden=True)
def demo(out: Path, fast: bool, subject: int, stream_seconds: float, speed: float, smoothing: str | None,
         epochs: int | None, max_windows: int | None, bench_runs: int | None) -> None:
    """Train CNN + LSTM, quantize, benchmark, and stream a held-out subject through a virtual serial port.

    \b
    Example:
      hartool demo --out demo-out
      hartool demo --fast --speed 5
    """
    from ..demo import DemoOptions, run_demo

    opts = DemoOptions(out=out, fast=fast, subject=subject, stream_seconds=stream_seconds, speed=speed,
                       epochs=epochs, max_windows=max_windows, bench_runs=bench_runs,
                       **({"smoothing": smoothing} if smoothing is not None else {}))
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # Keras progress output is status, not data
        result = run_demo(opts, status, _live)
    click.echo(f"\nhartool demo: everything is in {out.resolve()}")
    for title, headers, rows in report_tables(result):
        click.echo(f"\n{title}")
        click.echo(table(headers, rows))
    for line in report_lines(result, time.perf_counter() - started):
        click.echo(line)


def _live(row: dict[str, Any]) -> None:
    mark = "" if row["truth"] is None else ("  ok" if row["truth"] == row["label"] else "  MISS")
    status(f"      t={row['t']:6.1f}s #{row['window']:<4d} predicted {row['label']:<19s} {row['confidence']:6.1%}"
           f"   true {row['truth'] or '(mixed/unlabeled)':<19s}{mark}")


def report_tables(result: Any) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The demo's summary tables as (title, headers, rows): training, artifacts, latency."""
    training = [[a, pct(t["accuracy"]), pct(t["macro_f1"]), t["epochs"], t["train_time_s"], f"{t['params']:,}"]
                for a, t in result.training.items()]
    artifacts = [[arch, r["name"], "-", "FAILED", "-", "-"] if r["status"] != "ok" else
                 [arch, r["name"], f"{r['bytes']:,}", pct(r["accuracy"]), f"{r['delta_pp']:+.2f} pp",
                  pct(r["agreement"])]
                 for arch, arts in result.artifacts.items() for r in arts]
    latency = [[r["bundle"], r["artifact"], r["backend"], f"{r['latency_us']['p50']:.1f}",
                f"{r['latency_us']['p99']:.1f}", _vs(r, "keras-predict"), _vs(r, "keras-tf-function")]
               for r in [*result.benchmark, *(b for b in result.keras_baseline if b["status"] == "ok")]]
    return [
        ("training (test subjects)", ["arch", "accuracy", "macro-F1", "epochs", "train s", "params"], training),
        ("artifacts (accuracy through LiteRT / onnxruntime)",
         ["arch", "artifact", "bytes", "accuracy", "Δ vs keras", "agreement"], artifacts),
        ("latency, 1 thread, per window (p50 / p99 us)",
         ["bundle", "artifact", "backend", "p50 us", "p99 us", "vs Keras predict", "vs tf.function"], latency),
    ]


def _vs(r: dict[str, Any], name: str) -> str:
    """A benchmark row's speed-up over the Keras baseline ``name``."""
    if r["artifact"] == name:
        return "1x"
    value = (r.get("vs_keras") or {}).get(name)
    return "-" if value is None else f"{value:,.1f}x"


def report_lines(result: Any, total_s: float) -> list[str]:
    """The lines after the tables: failed artifacts, the live stream, stage times, the whole-recording timeline."""
    lines = [f"  {arch} {r['name']}: {r['error']}" for arch, arts in result.artifacts.items() for r in arts
             if r["status"] != "ok"]
    s = result.stream
    if s:
        # The excerpt is chosen to hold an activity change, and a look-ahead smoother shows each change a few
        # windows late: over a score of windows that reads as a large cost. Say so; the last line scores it all.
        lines.append(f"\nstream excerpt: subject {s['subject']}, {s['artifact']}: {s['windows']} windows, accuracy "
                     f"{pct(s['accuracy'])} (unsmoothed {pct(s.get('raw_accuracy'))}) on {s['scored_windows']} "
                     "single-activity windows (too few to judge smoothing by: the whole recording is scored on the "
                     f"last line), dropped {s['dropped']}, "
                     f"inference p99 {s['inference_us'].get('p99', 0):.0f} us, end-to-end p99 "
                     f"{s['e2e_us'].get('p99', 0):.0f} us")
    lines.append("\nstage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.stages_s.items())
                 + f"; total {total_s:.0f} s")
    if result.timeline:
        lines.append("\n" + timeline_line(result.timeline))
    return lines


def timeline_line(t: dict[str, Any]) -> str:
    """The demo's last line: the held-out subject's whole recording, scored as the timeline a person sees."""
    raw = t.get("raw")
    vs_raw = (f" (unsmoothed {pct(raw['window_accuracy'])}, {raw['changes_per_min']:.1f} flips/min)"
              if raw else "")
    ratio = f" = {t['change_ratio']:.2f}x" if t.get("change_ratio") is not None else ""
    delay = f", labels {t['label_delay_s']:.1f} s behind" if t.get("label_delay_s") else ""
    return (f"held-out subject {t['subject']}, whole recording ({t['data_minutes']:.1f} min, {t['windows']} windows "
            f"streamed in {t['wall_s']:.1f} s, {t['x_real_time']:,.0f}x real time, {t['artifact']}, smoothing "
            f"{t['smoothing']}{delay}): window accuracy {pct(t['window_accuracy'])}, segment F1 {pct(t['segment_f1'])}, "
            f"{t['changes_per_min']:.1f} label changes/min vs {t['true_changes_per_min']:.1f} in the truth{ratio}"
            f"{vs_raw}")
