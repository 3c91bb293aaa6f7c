"""`hartool simulate`: a virtual IMU on a pseudo-terminal, or a phone app / MCU sending to a listening host."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import status

if TYPE_CHECKING:
    from ..sim.board import ClassifyingBoard
    from ..sim.device import DeviceOptions

_KINDS = ("serial", "hyperimu-tcp", "hyperimu-udp", "sensorlogger-http", "sensorlogger-mqtt", "mcu-tcp")
_PROB = click.FloatRange(0.0, 1.0)


@click.command()
@click.option("--as", "kind", type=click.Choice(_KINDS), default="serial", show_default=True,
              help="What to play: a serial board on a pty, or a phone app / MCU sending over the network.")
@click.option("--to", "to", default=None,
              help="Where the host listens (not for serial): HOST:PORT for tcp/udp, http://HOST:PORT/PATH, "
                   "mqtt://BROKER:PORT/TOPIC.")
@click.option("--subject", type=click.IntRange(min=1), default=9, show_default=True,
              help="Subject whose recording is replayed.")
@click.option("--dataset", default="hapt", show_default=True, help="hapt, uci-har:PATH or csv:DIR.")
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Replay this recording (hartool record format) instead of a dataset subject.")
@click.option("--protocol", type=click.Choice(["text", "binary"]), default="text", show_default=True,
              help="Serial: the board's protocol.")
@click.option("--rate", "rate_hz", type=click.FloatRange(0.0, 10000.0, min_open=True), default=None,
              help="Samples per second. Serial: default the data's rate. Apps: resampled to this rate "
                   "(default 100 Hz; mcu-tcp 104 Hz).")
@click.option("--jitter-ms", type=click.FloatRange(0.0, 1000.0), default=None,
              help="Apps: standard deviation of each timestamp's jitter (default 2 ms; mcu-tcp 0.05 ms).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="hyperimu-tcp: CSV lines or HyperIMU JSON packets.")
@click.option("--batch-ms", type=click.FloatRange(1.0, 60000.0), default=200.0, show_default=True,
              help="Sensor Logger: one JSON batch every MS.")
@click.option("--reconnect-every", type=click.IntRange(min=1), default=None,
              help="TCP apps: drop and reopen the connection every N samples (a flaky Wi-Fi).")
@click.option("--speed", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
              help="Real time x SPEED (0 = as fast as possible).")
@click.option("--samples-per-frame", type=click.IntRange(1, 255), default=1, show_default=True,
              help="Serial binary: samples per frame.")
@click.option("--noise", type=click.FloatRange(min=0.0), default=0.0, help="Serial: gaussian noise std added to every value.")
@click.option("--garbage", type=_PROB, default=0.0, help="Serial: probability of a garbage burst before a sample.")
@click.option("--drop", type=_PROB, default=0.0, help="Serial: probability of dropping a sample.")
@click.option("--truncate", type=_PROB, default=0.0, help="Serial: probability of cutting a line/frame in half.")
@click.option("--nan", "nan_prob", type=_PROB, default=0.0, help="Serial: probability of a NaN value (text).")
@click.option("--disconnect-after", type=click.IntRange(min=0), default=None,
              help="Serial: close the port after N samples (unplug).")
@click.option("--loop", is_flag=True, help="Serial: start over at the end of the recording.")
@click.option("--no-wait", is_flag=True, help="Serial: start sending at once instead of waiting for the host's 's'.")
@click.option("--keep-open", is_flag=True,
              help="Serial: keep the port open after the last sample until Ctrl-C (by default the device "
                   "lets the host read everything, closes the port like an unplug and exits).")
@click.option("--classify", type=click.Choice(["predictions", "both"]), default=None, is_flag=False,
              flag_value="predictions",
              help="Serial: a board that classifies by itself with --bundle's exported C library (built with the "
                   "host gcc) and sends one prediction message per window; 'both': its raw samples too.")
@click.option("--bundle", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The bundle a --classify board runs (its tflite-int8 artifact, as `hartool export c` builds it).")
@click.option("--seed", type=int, default=0, show_default=True)
def simulate(kind: str, to: str | None, subject: int, dataset: str, csv_file: Path | None, protocol: str,
             rate_hz: float | None, jitter_ms: float | None, fmt: str, batch_ms: float, reconnect_every: int | None,
             speed: float, samples_per_frame: int, noise: float, garbage: float, drop: float, truncate: float,
             nan_prob: float, disconnect_after: int | None, loop: bool, no_wait: bool, keep_open: bool,
             classify: str | None, bundle: Path | None, seed: int) -> None:
    """Play a held-out subject's recording as a device would send it.

    Serial (default): a virtual IMU board; prints its pseudo-terminal path, then streams. It waits for the
    host's start byte ('s', sent by `hartool stream` on connect), so no sample is lost before the host opens it.
    After the last sample it waits until the host has read everything, closes the port (the host sees an
    unplug) and exits, unless --loop or --keep-open. App senders exit after their last packet.

    Apps: the recording (50 Hz) is resampled to --rate on a jittery clock and sent as the app does, to a host
    that listens (start `hartool stream --port ...` first; TCP and HTTP senders retry for 10 s).

    \b
    Example:
      hartool simulate --subject 9 --speed 10
      hartool simulate --protocol binary --drop 0.01 --garbage 0.01
      hartool simulate --as hyperimu-tcp --to 127.0.0.1:9000          # stream --port tcp-listen://0.0.0.0:9000
      hartool simulate --as hyperimu-udp --to 127.0.0.1:9001          # stream --port udp://0.0.0.0:9001
      hartool simulate --as sensorlogger-http --to http://127.0.0.1:8000/data
      hartool simulate --as sensorlogger-mqtt --to mqtt://127.0.0.1:1883/phone/imu
      hartool simulate --as mcu-tcp --to 127.0.0.1:9000 --rate 104
      hartool simulate --classify --bundle bundles/cnn --protocol binary   # a classifying board
    """
    if (classify is None) != (bundle is None):
        raise click.BadParameter("--classify and --bundle go together", param_hint="--classify")
    if classify is not None and kind != "serial":
        raise click.BadParameter("a classifying board is a serial device (--as serial)", param_hint="--classify")
    values, src_rate = _simulation_source(dataset, subject, csv_file)
    if kind == "serial":
        if to is not None:
            raise click.BadParameter("a serial device has no --to: it prints its own port path", param_hint="--to")
        from ..sim.device import DeviceOptions, FaultSpec

        if disconnect_after is None and not (loop or keep_open):
            disconnect_after = len(values)  # the end of the recording: drain, then close like an unplug
        faults = FaultSpec(garbage_prob=garbage, drop_prob=drop, truncate_prob=truncate, nan_prob=nan_prob,
                           noise_std=noise, disconnect_after=disconnect_after)
        with _board(bundle, classify, values) as board:
            _play_serial(values, DeviceOptions(rate_hz=rate_hz or src_rate, speed=speed, protocol=protocol,
                                               faults=faults, seed=seed, samples_per_frame=samples_per_frame,
                                               loop=loop, paused=not no_wait, board=board), keep_open)
        return
    if to is None:
        raise click.BadParameter(f"--as {kind} needs --to (where the host listens)", param_hint="--to")
    if garbage or drop or truncate or nan_prob or noise or disconnect_after is not None or loop:
        raise click.BadParameter("fault injection and --loop apply to --as serial only", param_hint="--as")
    _play_app(kind, to, values, src_rate, rate_hz, jitter_ms, fmt, batch_ms / 1000.0, reconnect_every, speed, seed)


@contextlib.contextmanager
def _board(bundle: Path | None, classify: str | None, values) -> Iterator[ClassifyingBoard | None]:  # type: ignore[no-untyped-def]
    """The classifying board of ``--classify``: the bundle exported to C, built with the host gcc (kept in a
    temporary folder while the board runs), or None."""
    if bundle is None:
        yield None
        return
    from ..bench.mcu import HostLibrary
    from ..core.errors import HartoolError
    from ..export.c.library import export_c
    from ..sim.board import ClassifyingBoard

    with tempfile.TemporaryDirectory(prefix="hartool-board-") as tmp:
        try:
            export_c(bundle, Path(tmp) / "lib")
            lib = HostLibrary(Path(tmp) / "lib" / "src", Path(tmp) / "build")
        except HartoolError as exc:
            raise click.ClickException(str(exc)) from exc
        if lib.channels != values.shape[1]:
            raise click.ClickException(f"the bundle's model takes {lib.channels} channels, the recording has "
                                       f"{values.shape[1]}")
        status(f"classifying board: {bundle} as C (host gcc build), window {lib.window} / stride {lib.stride}, "
               f"{lib.classes} classes; sends predictions" + (" and samples" if classify == "both" else ""))
        yield ClassifyingBoard(lib.stream(), send_samples=classify == "both")


def _play_app(kind: str, to: str, values, src_rate: float, rate_hz: float | None, jitter_ms: float | None,  # type: ignore[no-untyped-def]
              fmt: str, batch_s: float, reconnect_every: int | None, speed: float, seed: int) -> None:
    from ..sim.play import DEFAULT_JITTER_MS, app_packets, play_app
    from ..sim.senders import SenderThread

    packets = app_packets(kind, values, src_rate, rate_hz=rate_hz, jitter_ms=jitter_ms, fmt=fmt, batch_s=batch_s,
                          seed=seed)
    samples = sum(p.samples for p in packets)
    jitter_ms = DEFAULT_JITTER_MS[kind] if jitter_ms is None else jitter_ms
    status(f"{kind}: {len(values)} recorded samples at {src_rate:g} Hz -> {samples} readings in {len(packets)} "
           f"packets (jitter {jitter_ms:g} ms) to {to} x {speed:g}")
    sender = SenderThread(lambda stop: play_app(kind, packets, to, speed=speed, stop=stop,
                                                drop_every=reconnect_every))
    started = time.monotonic()
    sender.start()
    try:
        while sender.is_alive():
            sender.join(0.2)
    except KeyboardInterrupt:
        sender.stop()
    if sender.error is not None:
        raise sender.error
    stats = sender.stats
    if stats is not None and not stats.stopped:
        _tell_speed(packets[-1].t_s - packets[0].t_s, time.monotonic() - started, speed)
    if stats is not None:
        answers = ", ".join(f"{code}: {n}" for code, n in sorted(stats.http_status.items()))
        status(f"sent {stats.packets} packets ({stats.samples} readings, {stats.bytes} bytes) over "
               f"{stats.connections} connection(s)" + (f"; HTTP answers {answers}" if answers else ""))


def _tell_speed(span_s: float, elapsed_s: float, speed: float) -> None:
    """Say the speed reached (real time x, connection set-up included) when it is not the one asked for."""
    reached = span_s / elapsed_s if elapsed_s > 0 else float("inf")
    if speed == 0:
        status(f"as fast as possible: about {reached:.1f}x real time")
    elif reached < 0.9 * speed:
        status(f"warning: could not keep x{speed:g}: reached about x{reached:.1f} real time "
               "(this sender or the host is too slow)")


def _play_serial(values, opts: DeviceOptions, keep_open: bool) -> None:  # type: ignore[no-untyped-def]
    from ..sim.device import VirtualDevice

    device = VirtualDevice(values, opts)
    click.echo(device.port_path)
    sys.stdout.flush()
    status(f"virtual device on {device.port_path}: {len(values)} samples at {opts.rate_hz:g} Hz x {opts.speed:g} "
           f"({opts.protocol}){'; waiting for the host' if opts.paused else ''}")
    with device:
        device.start()
        try:
            while not device.wait(0.2):
                pass
            status(f"sent {device.samples_sent} samples ({device.samples_dropped_injected} dropped, "
                   f"{device.garbage_bursts} garbage bursts, {device.truncated} truncated, {device.nan_injected} NaN)")
            if opts.board is not None:
                status(f"sent {device.predictions_sent} predictions of {opts.board.windows} windows "
                       f"({device.predictions_dropped} dropped, {device.predictions_truncated} truncated)")
            # --keep-open: a board that stays plugged in; the host ends on its own terms (--until-quiet, ...).
            while keep_open and not device.disconnected:
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
