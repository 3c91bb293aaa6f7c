"""`hartool stream`, `hartool simulate` and `hartool record`: the device-facing commands (no TensorFlow)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from .common import status

UNIT_OPTIONS = [
    click.option("--acc-unit", type=click.Choice(["g", "m/s2", "raw"]), default="g", show_default=True,
                 help="Unit the device sends acceleration in (phones often use m/s2)."),
    click.option("--gyro-unit", type=click.Choice(["rad/s", "deg/s", "raw"]), default="rad/s", show_default=True,
                 help="Unit the device sends angular rate in (Arduino sketches often use deg/s)."),
    click.option("--acc-lsb", type=float, default=None, help="g per count, with --acc-unit raw (MPU6050 ±2 g: 6.1035e-5)."),
    click.option("--gyro-lsb", type=float, default=None,
                 help="deg/s per count, with --gyro-unit raw (MPU6050 ±250 dps: 0.0076336)."),
]


def unit_options(fn):  # type: ignore[no-untyped-def]
    for option in reversed(UNIT_OPTIONS):
        fn = option(fn)
    return fn


def _fmt_us(values: dict[str, float], key: str) -> str:
    return f"{values[key]:.0f} us" if key in values else "-"


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--port", required=True,
              help="Device path (/dev/ttyACM0, /dev/rfcomm0), pyserial URL (socket://HOST:PORT), '-' (stdin) "
                   "or a recorded file to replay.")
@click.option("--baud", type=int, default=115200, show_default=True)
@click.option("--protocol", type=click.Choice(["auto", "text", "binary"]), default="auto", show_default=True)
@click.option("--artifact", default=None, help="Artifact name from the manifest (default: tflite-int8 if present).")
@click.option("--backend", type=click.Choice(["auto", "litert", "tflite-runtime", "tf", "onnxruntime"]),
              default="auto", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="Interpreter threads.")
@click.option("--smooth", type=int, default=1, show_default=True, help="Average probabilities over K windows.")
@click.option("--min-confidence", type=float, default=0.0, show_default=True,
              help="Mark predictions below this probability as uncertain.")
@click.option("--jsonl", is_flag=True, help="One JSON object per window on stdout, nothing else.")
@click.option("--reconnect", is_flag=True, help="Reopen the device with backoff when it disappears.")
@click.option("--duration", "duration_s", type=float, default=None, help="Stop after S seconds.")
@click.option("--max-windows", type=int, default=None, help="Stop after N windows.")
@click.option("--summary-json", type=click.Path(path_type=Path), default=None,
              help="Also write the final summary as JSON to this file.")
@unit_options
def stream(bundle: Path, port: str, baud: int, protocol: str, artifact: str | None, backend: str, threads: int,
           smooth: int, min_confidence: float, jsonl: bool, reconnect: bool, duration_s: float | None,
           max_windows: int | None, summary_json: Path | None, acc_unit: str, gyro_unit: str,
           acc_lsb: float | None, gyro_lsb: float | None) -> None:
    """Classify live IMU samples from a serial device, one line per window.

    Data goes to stdout (text lines, or JSONL with --jsonl); status, warnings and the final summary go
    to stderr. Ctrl-C stops and prints the summary.

    \b
    Example:
      hartool stream bundles/cnn --port /dev/ttyACM0
      hartool stream bundles/cnn --port socket://192.168.1.20:8080 --acc-unit m/s2 --jsonl
      hartool simulate --subject 9 --speed 10   # prints /dev/pts/N, then:
      hartool stream bundles/cnn --port /dev/pts/N --smooth 3
    """
    from ..runtime.stream import StreamOptions, WindowPrediction, run_stream

    opts = StreamOptions(port=port, artifact=artifact, backend=backend, threads=threads, baud=baud,
                         protocol=protocol, smooth=smooth, min_confidence=min_confidence, reconnect=reconnect,
                         duration_s=duration_s, max_windows=max_windows, acc_unit=acc_unit, gyro_unit=gyro_unit,
                         acc_lsb=acc_lsb, gyro_lsb=gyro_lsb)
    out = sys.stdout

    def emit(p: WindowPrediction) -> None:
        if jsonl:
            out.write(json.dumps(p.to_json()) + "\n")
        else:
            flag = " (uncertain)" if p.uncertain else ""
            out.write(f"{p.t_s:8.2f}s  #{p.window:<5d} {p.label:<20s} {p.confidence:6.1%}{flag}\n")
        out.flush()  # a pipe reader sees each window as it happens

    summary = run_stream(bundle, opts, emit, on_status=status)
    lines = [
        f"summary: {summary.samples} samples, {summary.windows} windows ({summary.artifact}, {summary.backend}, "
        f"{summary.protocol or '?'} protocol) in {summary.duration_s:.1f} s; end: {summary.end_reason}",
        f"  bad lines {summary.bad_lines}, bad frames {summary.bad_frames}, header lines {summary.header_lines}, "
        f"sequence gaps {summary.seq_gaps}, dropped samples {summary.dropped} "
        f"(queue {summary.dropped_queue}), not yet windowed {summary.pending}, reconnects {summary.reconnects}",
        f"  inference p50 {_fmt_us(summary.inference_us, 'p50')} p99 {_fmt_us(summary.inference_us, 'p99')}; "
        f"end-to-end p50 {_fmt_us(summary.e2e_us, 'p50')} p99 {_fmt_us(summary.e2e_us, 'p99')}"
        + (f"; device rate {summary.rate_hz:.1f} Hz" if summary.rate_hz else "")
        + (f"; peak RSS {summary.peak_rss_mb:.0f} MB" if summary.peak_rss_mb else ""),
    ]
    for line in lines:
        status(line)
    if summary_json:
        from dataclasses import asdict

        from ..core.atomic import atomic_write_json

        atomic_write_json(summary_json, asdict(summary))
    if summary.failed:
        raise click.ClickException(summary.message or summary.end_reason)


@click.command()
@click.option("--subject", type=int, default=9, show_default=True, help="Subject whose recording is replayed.")
@click.option("--dataset", default="hapt", show_default=True, help="hapt, uci-har:PATH or csv:DIR.")
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Replay this recording (hartool record format) instead of a dataset subject.")
@click.option("--protocol", type=click.Choice(["text", "binary"]), default="text", show_default=True)
@click.option("--rate", "rate_hz", type=float, default=None, help="Samples per second (default: the data's rate).")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Real time x SPEED (0 = as fast as possible).")
@click.option("--samples-per-frame", type=int, default=1, show_default=True, help="Binary: samples per frame.")
@click.option("--noise", type=float, default=0.0, help="Gaussian noise std added to every value.")
@click.option("--garbage", type=float, default=0.0, help="Probability of a garbage burst before a sample.")
@click.option("--drop", type=float, default=0.0, help="Probability of dropping a sample.")
@click.option("--truncate", type=float, default=0.0, help="Probability of cutting a line/frame in half.")
@click.option("--nan", "nan_prob", type=float, default=0.0, help="Probability of a NaN value (text).")
@click.option("--disconnect-after", type=int, default=None, help="Close the port after N samples (unplug).")
@click.option("--loop", is_flag=True, help="Start over at the end of the recording.")
@click.option("--no-wait", is_flag=True, help="Start sending at once instead of waiting for the host's 's'.")
@click.option("--exit-when-done", is_flag=True, help="Close the port after the last sample (like an unplug).")
@click.option("--seed", type=int, default=0, show_default=True)
def simulate(subject: int, dataset: str, csv_file: Path | None, protocol: str, rate_hz: float | None, speed: float,
             samples_per_frame: int, noise: float, garbage: float, drop: float, truncate: float, nan_prob: float,
             disconnect_after: int | None, loop: bool, no_wait: bool, exit_when_done: bool, seed: int) -> None:
    """A virtual IMU device: prints its pseudo-terminal path, then streams a held-out subject's recording.

    By default it waits for the host's start byte ('s', sent by `hartool stream` on connect), so no
    sample is lost before the host opens the port.

    \b
    Example:
      hartool simulate --subject 9 --speed 10
      hartool simulate --protocol binary --drop 0.01 --garbage 0.01
    """
    from ..wire.device import FaultSpec, VirtualDevice

    values, rate = _simulation_source(dataset, subject, csv_file)
    faults = FaultSpec(garbage_prob=garbage, drop_prob=drop, truncate_prob=truncate, nan_prob=nan_prob,
                       noise_std=noise, disconnect_after=disconnect_after)
    device = VirtualDevice(values, rate_hz=rate_hz or rate, speed=speed, protocol=protocol, faults=faults,
                           seed=seed, samples_per_frame=samples_per_frame, loop=loop, paused=not no_wait)
    click.echo(device.port_path)
    sys.stdout.flush()
    status(f"virtual device on {device.port_path}: {len(values)} samples at {rate_hz or rate:g} Hz x {speed:g} "
           f"({protocol}){'' if no_wait else '; waiting for the host'}")
    with device:
        device.start()
        try:
            while not device.wait(0.2):
                pass
            status(f"sent {device.samples_sent} samples ({device.samples_dropped_injected} dropped, "
                   f"{device.garbage_bursts} garbage bursts, {device.truncated} truncated, {device.nan_injected} NaN)")
            # A real board does not vanish when it has nothing to say: keep the port open until Ctrl-C,
            # so the host reads everything and ends on its own terms (--max-windows, --duration).
            while not exit_when_done and not device.disconnected:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass


def _simulation_source(dataset: str, subject: int, csv_file: Path | None):  # type: ignore[no-untyped-def]
    """(values (n, 6) float32, sample rate) from a CSV recording or a dataset subject's recordings."""
    import numpy as np

    if csv_file is not None:
        from ..core.csvformat import read_csv_session

        session = read_csv_session(csv_file)
        return session.values, session.sample_rate_hz() or 50.0
    from ..data import load_dataset, recording_for_subject

    ds = load_dataset(dataset)
    recs = recording_for_subject(ds, subject)
    return np.concatenate([r.values for r in recs]), ds.sample_rate_hz


@click.command()
@click.option("--port", required=True, help="Device path, pyserial URL or '-' (stdin).")
@click.option("--label", required=True, help="Activity being performed, e.g. WALKING.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="CSV file to write (csv:DIR dataset format).")
@click.option("--duration", "duration_s", type=float, default=None, help="Stop after S seconds (default: Ctrl-C).")
@click.option("--subject", type=int, default=None, help="Subject id written into the file header.")
@click.option("--baud", type=int, default=115200, show_default=True)
@click.option("--protocol", type=click.Choice(["auto", "text", "binary"]), default="auto", show_default=True)
@click.option("--rate", "rate_hz", type=float, default=None, help="Nominal sample rate for the header.")
@unit_options
def record(port: str, label: str, out: Path, duration_s: float | None, subject: int | None, baud: int, protocol: str,
           rate_hz: float | None, acc_unit: str, gyro_unit: str, acc_lsb: float | None, gyro_lsb: float | None) -> None:
    """Record a labelled session from a device into a CSV that `--dataset csv:DIR` trains on.

    \b
    Example:
      hartool record --port /dev/ttyACM0 --label WALKING --out my-data/s01_walk.csv --duration 120 --subject 1
      hartool train --arch cnn --dataset csv:my-data --out bundles/mine
    """
    from ..core.errors import WireError
    from ..wire.reader import make_decoder
    from ..wire.recorder import record as run_record
    from ..wire.sources import open_port

    units = f"acc={acc_unit} gyro={gyro_unit}"
    meta: dict[str, object] = {"units": units, "label": label}
    if subject is not None:
        meta["subject"] = subject
    if rate_hz:
        meta["sample_rate_hz"] = rate_hz
    if "raw" in (acc_unit, gyro_unit):
        raise click.BadParameter("record stores physical units; send g/m/s2 and rad/s/deg/s", param_hint="--acc-unit")
    source = open_port(port, baud=baud)
    status(f"recording {label} from {source.name} into {out} (Ctrl-C to stop)")
    try:
        source.write(b"s")  # start a device that waits for the host; harmless for one that streams already
    except WireError:
        pass  # a replayed file or stdin cannot be written to
    stats = run_record(source, make_decoder(protocol, 6), out, label=label, duration_s=duration_s, meta=meta)
    status(f"recorded {stats.samples} samples ({stats.duration_s:.1f} s, {stats.time_source} clock) into "
           f"{stats.path}; end: {stats.end_reason}{' - ' + stats.message if stats.message else ''}")
