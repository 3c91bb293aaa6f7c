"""`hartool stream`: classify a live source (board, phone app, file) window by window (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..runtime.smoothing import DEFAULT_SMOOTHING
from ..wire.spec import SourceSpec
from .common import first_interrupt_calls, status
from .options import SmoothType, source_options
from .outputs import open_stream_outputs, output_options


def _fmt_us(values: dict[str, float], key: str) -> str:
    return f"{values[key]:.0f} us" if key in values else "-"


def _summary_text(summary: Any) -> list[str]:
    """The human summary printed on stderr when a stream ends."""
    return [
        f"summary: {summary.samples} samples, {summary.windows} windows ({summary.artifact}, {summary.backend}, "
        f"{summary.protocol or '?'} protocol) in {summary.duration_s:.1f} s; end: {summary.end_reason}",
        f"  bad lines {summary.bad_lines}, bad frames {summary.bad_frames}, header lines {summary.header_lines}, "
        f"sequence gaps {summary.seq_gaps}, dropped samples {summary.dropped} "
        f"(queue {summary.dropped_queue}), not yet windowed {summary.pending}, reconnects {summary.reconnects}",
        f"  device time {summary.time_unit or 'none'}: {summary.grid_samples} samples at the model rate, gaps "
        f"{summary.gaps} ({summary.gap_samples} samples not interpolated), backwards timestamps {summary.backwards}"
        f", bad batches {summary.bad_batches}, unknown sensors {summary.unknown_sensors}",
        f"  inference p50 {_fmt_us(summary.inference_us, 'p50')} p99 {_fmt_us(summary.inference_us, 'p99')}; "
        f"end-to-end p50 {_fmt_us(summary.e2e_us, 'p50')} p99 {_fmt_us(summary.e2e_us, 'p99')}"
        + (f"; device rate {summary.rate_hz:.1f} Hz" if summary.rate_hz else "")
        + (f"; peak RSS {summary.peak_rss_mb:.0f} MB" if summary.peak_rss_mb else ""),
    ] + _device_text(summary) + _door_text(summary.port_counters)


def _device_text(summary: Any) -> list[str]:
    """The board's own predictions, when it sent any (a classifying sketch)."""
    if not (summary.device_predictions or summary.bad_predictions or summary.refused_predictions):
        return []
    return [f"  device predictions {summary.device_predictions} (malformed {summary.bad_predictions}, refused "
            f"{summary.refused_predictions}: class count not the bundle's)"]


def _door_text(counters: dict[str, int]) -> list[str]:
    """What the source counted at its door (connections, refused messages and senders, takeovers, resets):
    the same counters as ``port_counters`` in --summary-json, in the port's own order."""
    if not counters:
        return []
    return ["  door: " + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in counters.items())]


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@source_options()
@click.option("--artifact", default=None, help="Artifact name from the manifest (default: tflite-int8 if present).")
@click.option("--backend", type=click.Choice(["auto", "litert", "tflite-runtime", "tf", "onnxruntime"]),
              default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True, help="Interpreter threads.")
@click.option("--smooth", type=SmoothType(), default=DEFAULT_SMOOTHING, show_default=True,
              help="Smoothing of window probabilities: none, mean:K, vote:K, hysteresis, hmm (with parameters, "
                   "e.g. hmm:switch=0.01); an integer K means mean:K. hmm:...,lag=L looks L windows ahead: "
                   "steadier labels, each shown L strides late (the default: 3.8 s at 50 Hz / stride 64); "
                   "hmm:...,still=P switches with probability P between two windows of one held still posture; "
                   "hmm:...,dwell=D assumes an activity, once entered, lasts at least D windows.")
@click.option("--min-confidence", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Mark predictions below this probability as uncertain.")
@click.option("--duration", "duration_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after S seconds.")
@click.option("--max-windows", type=click.IntRange(min=1), default=None, help="Stop after N windows.")
@click.option("--until-quiet", "until_quiet_s", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="S", help="Stop after S seconds without samples (end reason 'quiet'); without it a quiet "
                                "sender is only reported, once, after 10 s.")
@click.option("--summary-json", type=click.Path(path_type=Path), default=None,
              help="Also write the final summary as JSON to this file.")
@output_options
def stream(bundle: Path, source: SourceSpec, artifact: str | None, backend: str, threads: int, smooth: str,
           min_confidence: float, duration_s: float | None, max_windows: int | None, until_quiet_s: float | None,
           summary_json: Path | None, **outputs_kw: Any) -> None:
    """Classify live IMU samples from a board, a phone app or a file, one line per window.

    Data goes to stdout (text lines, or JSONL with --jsonl); status, warnings and the final summary go
    to stderr. Ctrl-C stops and prints the summary.

    \b
    Example:
      hartool stream bundles/cnn --port /dev/ttyACM0
      hartool stream bundles/cnn --port socket://192.168.1.20:8080 --acc-unit m/s2 --jsonl
      hartool simulate --subject 9 --speed 10   # prints /dev/pts/N, then:
      hartool stream bundles/cnn --port /dev/pts/N --smooth 3
      hartool stream bundles/cnn --port tcp-listen://0.0.0.0:5555 --acc-unit m/s2 --time-unit ms \\
          --columns t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z          # HyperIMU CSV over TCP
      hartool stream bundles/cnn --port http://0.0.0.0:8000/data     # Sensor Logger HTTP push
    """
    from ..runtime.session import Session
    from ..runtime.sinks import summary_lines
    from ..runtime.stream import StreamOptions

    opts = StreamOptions(source, artifact=artifact, backend=backend, threads=threads, smooth=smooth,
                         min_confidence=min_confidence, duration_s=duration_s, max_windows=max_windows,
                         until_quiet_s=until_quiet_s)
    fan = open_stream_outputs(bundle, outputs_kw, reconnect=source.reconnect)  # fatal problems fail before reading
    session = Session(bundle, opts, sinks=fan, on_status=status)  # the session closes the sinks
    with first_interrupt_calls(session.interrupt):
        for _ in session:
            pass
    summary = session.close()
    sink_counters = fan.close(summary)  # their final counters (closing twice returns them again)
    for line in _summary_text(summary) + summary_lines(sink_counters):
        status(line)
    if summary_json:
        from dataclasses import asdict

        from ..core.atomic import atomic_write_json

        atomic_write_json(summary_json, {**asdict(summary), **sink_counters})
    if summary.failed:
        raise click.ClickException(summary.message or summary.end_reason)
