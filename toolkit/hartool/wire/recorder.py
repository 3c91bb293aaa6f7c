"""``hartool record``: decode a device stream into a labelled CSV recording, written atomically (temp file + rename).

The current label can change while recording: label switches arrive as events (a :class:`queue.Queue` of
label names, ``""`` for none) from anything, e.g. the CLI's key reader, and apply to every sample decoded
after the switch. The port is read by :class:`hartool.wire.reader.ReaderThread` (which also waits for
the next sender of a listening source), and samples go through the ingest stage
(:class:`hartool.core.ingest.IngestStage`, as `stream`'s do) without resampling: ``t_s`` is in seconds
whatever the device sends (device timestamps, their unit from the batch, ``source.time_unit`` or detected; the
host clock at arrival without them), values in g and rad/s. Sources that time each sensor on its own
clock (Sensor Logger) are put on one ``grid_hz`` grid, and so is every source when the header names a rate
(``meta["sample_rate_hz"]``, `record --rate`): the rows are at the rate the header says. numpy and core only: it runs on the edge.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hartool.core.csvformat import VALUE_COLUMNS, format_header, format_row
from hartool.core.errors import WireError
from hartool.core.ingest import IngestStage, UnitsError
from hartool.core.resample import GridChunk
from hartool.wire.events import ReaderEvent
from hartool.wire.port import Port
from hartool.wire.reader import ReaderStats, ReaderThread
from hartool.wire.spec import SourceSpec

__all__ = ["DEFAULT_UNITS", "RecordOptions", "RecordStats", "record", "record_channels"]

DEFAULT_UNITS = "acc=g gyro=rad/s"
_NCH = len(VALUE_COLUMNS)
# Decoder counters a recording reports (summed over the connections of a listening source).
_DECODER_KEYS = ("samples", "lines", "bad_lines", "header_lines", "frames", "bad_frames", "seq_gaps",
                 "discarded_bytes")


def record_channels() -> list[dict[str, str]]:
    """The units recordings are stored in: acc in g, gyro in rad/s (what `DEFAULT_UNITS` says)."""
    return [{"name": n, "unit": "g" if n.startswith("acc") else "rad/s"} for n in VALUE_COLUMNS]


@dataclass(frozen=True)
class RecordStats:
    """What a recording session produced."""

    path: Path | None  # the CSV written, None when no sample arrived (nothing is left behind then)
    samples: int
    duration_s: float  # t_s of the last sample
    bytes_read: int
    time_source: str  # "device" (timestamps from the stream) or "host" (monotonic clock at arrival)
    end_reason: str  # "duration" | "stopped" | "eof" | "disconnected" | "interrupted"
    message: str  # e.g. the disconnect reason; "" otherwise
    decoder: dict[str, int]  # the decoder's counters (bad_lines, bad_frames, dropped, ...)
    time_unit: str | None = None  # unit of the device timestamps ("ms", ...), None with host time
    reconnects: int = 0  # new senders on a listening source (tcp-listen, ...) that continued the session
    # Seconds and samples per label ("" = unlabelled), in first-use order; switches as (t_s, label).
    label_seconds: dict[str, float] = field(default_factory=dict)
    label_samples: dict[str, int] = field(default_factory=dict)
    switches: list[tuple[float, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RecordOptions:
    """How a session is recorded: how the device's bytes are read, label, header, limits.

    ``source`` says how to read the port :func:`record` is given (wire format, text columns, time unit,
    units as ``stream`` takes them: ``raw`` with ``*_lsb``); its ``port`` names what the caller opened.
    ``meta`` goes into the header in order (e.g. ``subject``, ``sample_rate_hz``; its rate also spaces
    samples that arrived together without timestamps); ``grid_hz`` is the rate sensors on separate clocks
    are resampled to.
    """

    source: SourceSpec
    label: str = ""
    duration_s: float | None = None
    meta: Mapping[str, object] = field(default_factory=dict)
    grid_hz: float = 50.0
    flush_every_s: float = 1.0
    max_queue: int = 1024


def _rate_of(meta: Mapping[str, object]) -> float | None:
    try:
        rate = float(str(meta.get("sample_rate_hz", "")))
    except ValueError:
        return None
    return rate if rate > 0 else None


class _Writer:
    """The temp file, the current label and per-label accounting of one session."""

    def __init__(self, out: Path, header: str, label: str, step_s: float) -> None:
        self.out, self.label, self.step_s = out, label.strip(), step_s
        self.tmp = out.with_name(f".{out.name}.part")
        self.samples = 0
        self.last_t = 0.0  # t_s of the last sample written
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.switches: list[tuple[float, str]] = []
        self.fh = open(self.tmp, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed in close()
        self.fh.write(header)

    def switch(self, label: str) -> None:
        format_row(0.0, [0.0] * _NCH, label)  # a bad label is refused when it is chosen, not mid-file
        self.label = label.strip()
        self.switches.append((self.last_t, self.label))

    def write(self, t: np.ndarray, values: np.ndarray, label: str) -> int:
        """Rows at ``t`` (seconds since the first sample) of ``values`` already in g and rad/s."""
        if not len(t):
            return 0
        self.fh.write("".join(format_row(ts, vals, label)
                              for ts, vals in zip(t.tolist(), values.tolist(), strict=True)))
        # Each sample counts the time since the sample before it (its own period) towards its label.
        prev = t[0] - self.step_s if self.samples == 0 else self.last_t
        spent = float(t[-1] - prev)
        self.last_t = float(t[-1])
        self.seconds[label] = self.seconds.get(label, 0.0) + max(spent, 0.0)
        self.counts[label] = self.counts.get(label, 0) + len(t)
        self.samples += len(t)
        return len(t)

    def discard(self) -> None:
        """The session is refused (units in doubt, ...): nothing is left behind, ``out`` is untouched."""
        self.fh.close()
        self.tmp.unlink(missing_ok=True)

    def close(self) -> Path | None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        if self.samples:
            os.replace(self.tmp, self.out)
            return self.out
        self.tmp.unlink(missing_ok=True)
        return None


def _prepare(out: Path, options: RecordOptions) -> tuple[str, IngestStage]:
    """Check everything that can be checked before a file exists: units, header keys, the label."""
    o = options
    o.source.check(record_channels())  # bad units or columns: refused before the file exists
    header_meta = {k: v for k, v in o.meta.items() if k != "units"}
    header_meta["units"] = DEFAULT_UNITS
    header = format_header(header_meta)  # validates the keys before anything is created
    format_row(0.0, [0.0] * _NCH, o.label)  # validates the label the same way every row will
    # A file must hold what was sent: units in doubt refuse the session rather than being a note.
    ingest = IngestStage(record_channels(), o.grid_hz, o.source.ingest(refuse_doubtful_units=True),
                         resample=False, nominal_hz=_rate_of(header_meta), regrid=_rate_of(header_meta) is not None)
    return header, ingest


def record(port: Port, out: str | os.PathLike[str], options: RecordOptions, *,
           events: queue.Queue[str] | None = None, stop_event: threading.Event | None = None,
           on_batch: Callable[[int], None] | None = None,
           on_status: Callable[[str], None] | None = None) -> RecordStats:
    """Read ``port`` into the CSV file ``out`` as ``options`` say (see :class:`RecordOptions`).

    The header holds ``meta`` and ``units: acc=g gyro=rad/s``. Rows get ``options.label`` until a label name
    arrives on ``events`` (``""`` = unlabelled). Ends after ``duration_s`` seconds (None: no limit), when
    ``stop_event`` is set, at the end of a file source, or when the device disappears; the rows so far are
    kept in every case, including Ctrl-C: the temp file is flushed every ``flush_every_s`` and renamed to
    ``out`` at the end. A listening source (tcp-listen, udp, http, mqtt) whose sender leaves waits for the
    next one: the session goes on. ``on_batch(total_samples)`` is called after each batch written
    (progress display); ``on_status`` gets the ingest stage's notes (detected time unit, unit warnings).

    The reader thread owns ``port`` from here on and closes it at the end.

    The first second's magnitudes must fit the units (see :mod:`hartool.core.unitcheck`) unless
    ``units_confirmed``: otherwise :class:`~hartool.core.ingest.UnitsError` and no file is written.

    Raises :class:`WireError` when the stream has not 6 channels, or when it ended without any sample.
    """
    o = options
    out = Path(out)
    header, ingest = _prepare(out, o)
    out.parent.mkdir(parents=True, exist_ok=True)
    rate = _rate_of(o.meta)
    writer = _Writer(out, header, o.label, 1.0 / rate if rate else 0.0)
    reader = o.source.reader(port, record_channels(), max_queue=o.max_queue)
    loop = _Loop(reader, ingest, writer, o, events, stop_event, on_batch, on_status)
    refused = False
    try:
        reader.start()
        loop.run()
    except UnitsError:
        refused = True
        raise
    finally:
        reader.stop()
        if refused:
            writer.discard()
        else:
            written = writer.close()
    stats = reader.stats()
    if not writer.samples:
        raise WireError(f"no samples received from {port.name} ({stats.bytes_read} bytes read, {loop.end_reason}); "
                        "check --baud and --protocol")
    return RecordStats(
        path=written, samples=writer.samples, duration_s=writer.last_t, bytes_read=stats.bytes_read,
        time_source=ingest.time_source or "host", end_reason=loop.end_reason, message=loop.message,
        decoder=_decoder_counters(stats, reader), reconnects=stats.reconnects,
        time_unit=ingest.time_unit if ingest.time_source == "device" else None,
        label_seconds={k: round(v, 3) for k, v in writer.seconds.items()},
        label_samples=dict(writer.counts), switches=list(writer.switches))


def _decoder_counters(stats: ReaderStats, reader: ReaderThread) -> dict[str, int]:
    counters = {k: int(getattr(stats, k)) for k in _DECODER_KEYS}
    counters["dropped"] = stats.dropped_wire
    return {**counters, **reader.decoder_extra()}


class _Loop:
    """Take the reader's batches and events, switch labels, write rows, until the session ends."""

    def __init__(self, reader: ReaderThread, ingest: IngestStage, writer: _Writer, options: RecordOptions,
                 events: queue.Queue[str] | None, stop_event: threading.Event | None,
                 on_batch: Callable[[int], None] | None, on_status: Callable[[str], None] | None) -> None:
        self.reader, self.ingest, self.writer, self.options = reader, ingest, writer, options
        self.events, self.stop_event = events, stop_event
        self.on_batch, self.on_status = on_batch, on_status
        self.end_reason = "interrupted"
        self.message = ""

    def _drain_events(self) -> None:
        while self.events is not None:
            try:
                label = self.events.get_nowait()
            except queue.Empty:
                return
            self.writer.switch(label)

    def _ended(self, start: float) -> bool:
        if self.stop_event is not None and self.stop_event.is_set():
            self.end_reason = "stopped"
            return True
        if self.options.duration_s is not None and time.monotonic() - start >= self.options.duration_s:
            self.end_reason = "duration"
            return True
        return False

    def run(self) -> None:
        start = last_flush = time.monotonic()
        try:
            while not self._ended(start):
                now = time.monotonic()
                if now - last_flush >= self.options.flush_every_s:
                    # Also while the source is quiet: what arrived is on disk within a second.
                    self.writer.fh.flush()
                    last_flush = now
                item = self.reader.get(timeout=0.05)
                # After the read: a switch made before these samples arrived applies to them.
                self._drain_events()
                if item is None:
                    if self.reader.finished:
                        self.end_reason = self.reader.end_reason or "eof"
                        return
                    continue
                if isinstance(item, ReaderEvent):
                    if item.final:
                        self.end_reason, self.message = item.kind, item.message
                        return
                    continue
                self._write(self.ingest.feed(item, tag=self.writer.label))
        finally:
            self._write(self.ingest.flush())  # batches still held for the time-unit decision, however few

    def _write(self, chunks: list[GridChunk]) -> None:
        written = 0
        for chunk in chunks:
            if chunk.t is not None:  # (an empty restart marker has no times: nothing to write)
                label = chunk.tag if isinstance(chunk.tag, str) else self.writer.label
                written += self.writer.write(chunk.t, chunk.values, label)
        if self.on_status is not None:
            for line in self.ingest.pop_messages():
                self.on_status(line)
        if written and self.on_batch is not None:
            self.on_batch(self.writer.samples)
