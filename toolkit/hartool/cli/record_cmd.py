"""`hartool record`: one labelled CSV session from any source `stream` reads, labels switched by key press."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..wire.spec import SourceSpec
from .common import emit_json, status, table
from .options import source_options

if TYPE_CHECKING:
    from ..wire.recorder import RecordStats


def _label_list(text: str | None) -> list[str]:
    if text is None:
        return []
    from ..core.csvformat import canonical_label

    names = [canonical_label(t) for t in text.split(",") if t.strip()]
    if not names:
        raise click.BadParameter("name at least one activity", param_hint="--labels")
    if len(names) > 9:
        raise click.BadParameter(f"{len(names)} labels, but only keys 1..9 switch labels", param_hint="--labels")
    if len(set(names)) != len(names):
        raise click.BadParameter("a label is named twice", param_hint="--labels")
    return names


@contextlib.contextmanager
def _key_source(keys: str | None, port: str) -> Iterator[int]:
    """The fd label keys are read from: --keys PATH, else stdin, else (stdin carries the data) /dev/tty."""
    if keys is None and port.strip() != "-":
        yield sys.stdin.fileno()
        return
    path = keys or "/dev/tty"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
    except OSError as exc:
        raise click.ClickException(f"cannot read label keys from {path}: {exc.strerror}; pass --keys TTY") from exc
    try:
        yield fd
    finally:
        os.close(fd)


@click.command()
@source_options("Any source `stream` reads: device path, socket://, tcp-listen://, udp://, http://, mqtt://, "
                "a file, or '-' (stdin). The file is always in g and rad/s; t_s is always seconds.",
                reconnect=False)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="CSV file to write (csv:DIR dataset format).")
@click.option("--label", default=None, help="Label of every row (or the first label, with --labels).")
@click.option("--labels", "labels_text", default=None, metavar="A,B,...",
              help="Switch the label live: keys 1..9 pick these labels, 0 none, q stops.")
@click.option("--subject", default=None, help="Subject name or number written into the header ('# subject:').")
@click.option("--duration", "duration_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after S seconds (default: q or Ctrl-C).")
@click.option("--rate", "rate_hz", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Sample rate of the rows, written into the header: the samples are resampled to it "
                   "(default: rows at the sender's own rate; sensors on separate clocks, e.g. Sensor Logger, "
                   "on a 50 Hz grid).")
@click.option("--keys", default=None, metavar="TTY",
              help="Terminal to read label keys from (default: this one; /dev/tty when --port is '-').")
@click.option("--force", is_flag=True, help="Replace --out if it exists (by default an existing file is never "
                                           "replaced).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def record(source: SourceSpec, out: Path, label: str | None, labels_text: str | None, subject: str | None,
           duration_s: float | None, rate_hz: float | None, keys: str | None, force: bool, as_json: bool) -> None:
    """Record a labelled session into a CSV that `--dataset csv:DIR` trains on.

    With --labels, press 1..9 to switch to that label and 0 for none, without restarting; q (or Ctrl-C,
    or --duration) ends the session. Seconds per label are printed at the end. An existing --out is never
    replaced without --force, and samples whose magnitudes contradict the units given (m/s2 sent as g, ...)
    stop the session before a file is written, unless --units-confirmed.

    \b
    Example:
      hartool record --port /dev/ttyACM0 --label WALKING --out my-data/alice_walk.csv --subject alice
      hartool record --port tcp-listen://0.0.0.0:5555 --labels WALKING,SITTING,STANDING \\
          --out my-data/bob_1.csv --subject bob --acc-unit m/s2
      hartool train --dataset csv:my-data --test-subjects bob --out bundles/mine
    """
    labels = _label_list(labels_text)
    if label is None and not labels:
        raise click.UsageError("give --label (one activity) or --labels (switched by keys)")
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists; pass --force to replace it, or choose another --out")
    first = label or ""
    if labels and label is not None and first.strip() and _label_list(first)[0] not in labels:
        raise click.BadParameter(f"{label!r} is not one of --labels", param_hint="--label")
    meta: dict[str, object] = {}
    if subject is not None and subject.strip():
        meta["subject"] = subject.strip()
    if rate_hz:
        meta["sample_rate_hz"] = rate_hz
    if labels:
        meta["labels"] = ",".join(labels)
    elif first:
        meta["label"] = first
    stats = _run(source, out, first, labels, meta, duration_s, rate_hz or 50.0, keys)
    _report(stats, as_json)


def _run(spec: SourceSpec, out: Path, first: str, labels: list[str], meta: dict[str, object],
         duration_s: float | None, grid_hz: float, keys: str | None) -> RecordStats:
    """Open the source (and the key source with --labels) and record until the end of the session."""
    from ..wire.recorder import RecordOptions, record_channels
    from ..wire.recorder import record as run_record
    from .keys import KeyReader, key_help, start_key_thread

    spec.check(record_channels())  # --acc-lsb without raw etc.: one line, before opening anything
    options = RecordOptions(spec, label=first, duration_s=duration_s, meta=meta, grid_hz=grid_hz)
    source = spec.open_port()
    events: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.callback(source.close)
        if labels:
            fd = stack.enter_context(_key_source(keys, spec.port))
            reader = stack.enter_context(KeyReader(fd))
            start_key_thread(reader, labels, events, stop, on_switch=lambda lab: status(f"label: {lab or '(none)'}"))
            status(f"keys: {key_help(labels)}")
        status(f"recording {first or '(no label)'} from {source.name} into {out} "
               f"({'q or ' if labels else ''}Ctrl-C to stop)")
        # Ctrl-C ends the session like q does, so the per-label summary still prints.
        stack.enter_context(_sigint_sets(stop))
        try:
            return run_record(source, out, options, events=events, stop_event=stop, on_status=status)
        finally:
            stop.set()  # ends the key thread


@contextlib.contextmanager
def _sigint_sets(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (e.g. CliRunner in a worker)
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _report(stats: RecordStats, as_json: bool) -> None:
    status(f"recorded {stats.samples} samples ({stats.duration_s:.1f} s, {stats.time_source} clock"
           f"{', timestamps in ' + stats.time_unit if stats.time_unit else ''}) into {stats.path}; "
           f"end: {stats.end_reason}{' - ' + stats.message if stats.message else ''}"
           + (f"; {stats.reconnects} reconnects" if stats.reconnects else ""))
    if as_json:
        emit_json({"path": str(stats.path), "samples": stats.samples, "duration_s": stats.duration_s,
                   "time_source": stats.time_source, "time_unit": stats.time_unit, "end_reason": stats.end_reason,
                   "reconnects": stats.reconnects,
                   "label_seconds": stats.label_seconds, "label_samples": stats.label_samples,
                   "switches": [{"t_s": t, "label": lab} for t, lab in stats.switches], "decoder": stats.decoder})
        return
    click.echo(table(["label", "seconds", "samples"],
                     [[lab or "(none)", f"{sec:.1f}", stats.label_samples.get(lab, 0)]
                      for lab, sec in stats.label_seconds.items()]))
