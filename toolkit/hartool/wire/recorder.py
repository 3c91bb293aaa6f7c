"""``hartool record``: decode a device stream into a labelled CSV recording, written atomically (temp file + rename).

The current label can change while recording: label switches arrive as events (a :class:`queue.Queue` of
label names, ``""`` for none) from anything, e.g. the CLI's key reader, and apply to every sample decoded
after the switch. ``t_s`` is in seconds whatever the device sends: device timestamps go through
:class:`hartool.core.timebase.DeviceClock` (unit from the batch, ``time_unit``, or detected from their
spacing); without timestamps the host clock at arrival is used. Values are stored in g and rad/s
(``acc_unit``/``gyro_unit``/``*_lsb`` as ``stream`` takes them). Sources that time each sensor on its own
clock (Sensor Logger) need an ``aligner`` (e.g. :class:`hartool.runtime.resample.Resampler`, given by the
caller: this module imports only numpy and core) that puts them on one grid. numpy and core only: it runs
on the edge.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hartool.core.csvformat import VALUE_COLUMNS, format_header, format_row
from hartool.core.errors import WireError
from hartool.core.timebase import BatchScales, DeviceClock
from hartool.wire.autodetect import AutoDecoder, decoder_counters
from hartool.wire.batch import DecodedBatch
from hartool.wire.binary import BinaryDecoder
from hartool.wire.port import DeviceGone, Port
from hartool.wire.text import TextDecoder

__all__ = ["DEFAULT_UNITS", "RecordStats", "record", "record_channels"]

DEFAULT_UNITS = "acc=g gyro=rad/s"
_NCH = len(VALUE_COLUMNS)
# Timestamps collected before the time unit is detected from their spacing (as `stream` does).
_DETECT_SAMPLES = 8


class Aligner(Protocol):
    """Puts sensors on their own clocks onto one time grid (``Resampler.push`` has this shape)."""

    def push(self, name: str, t_s: np.ndarray, values: np.ndarray) -> list[Any]:
        """Chunks with ``t`` (seconds) and ``values`` (n, 6) that are complete now."""
        ...


AlignerFactory = Callable[[Mapping[str, Sequence[int]]], Aligner]  # {sensor name: channel indices}


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


class _Clock:
    """Turns batches into non-decreasing seconds since the first sample, from device or host time."""

    def __init__(self, rate_hz: float | None, time_unit: str) -> None:
        self.step = 1.0 / rate_hz if rate_hz else 0.0
        self.device = DeviceClock(time_unit)
        self.source: str | None = None
        self.t0 = 0.0
        self.offset = 0.0
        self.last: float | None = None

    def needs_more(self, batch: DecodedBatch, held: int) -> bool:
        """True while a timestamped stream's unit is still unknown and too few timestamps were seen."""
        return (self.source is None and batch.t is not None and batch.time_unit is None
                and not self.device.known and held < _DETECT_SAMPLES)

    def start(self, batches: list[DecodedBatch]) -> None:
        """The first batches decide: mixing device and host clocks in one file would make t_s meaningless."""
        first = batches[0]
        stamps = [b.t for b in batches if b.t is not None]
        if first.t is not None and (first.time_unit or self.device.known):
            self.source = "device"
        elif first.t is not None and sum(len(t) for t in stamps) >= 3:
            self.device.resolve(np.concatenate(stamps))
            self.source = "device"
        else:
            self.source = "host"

    def times(self, batch: DecodedBatch, arrived: float) -> np.ndarray:
        n = len(batch.values)
        if self.source == "host" and self.last is None:
            self.t0 = arrived - self.step * (n - 1)
        if self.source == "device" and batch.t is not None:
            t = self.device.seconds(batch.t, batch.time_unit or self.device.unit) + self.offset
            if self.last is not None and t[0] < self.last:
                # The device clock restarted (board reset): continue the file's time line from here.
                shift = self.last + self.step - t[0]
                self.offset += shift
                t = t + shift
        elif self.source == "device":
            # A batch without stamps in a stamped stream: extrapolate at the nominal rate.
            base = self.last if self.last is not None else 0.0
            t = base + self.step * np.arange(1, n + 1)
        else:
            # Host time: the batch arrived at once; spread it back over the nominal sample period.
            t = (arrived - self.t0) - self.step * np.arange(n - 1, -1, -1)
        if self.last is not None:
            t = np.maximum(t, self.last)
        t = np.maximum.accumulate(np.maximum(t, 0.0))
        self.last = float(t[-1])
        return t


def _rate_of(meta: Mapping[str, object]) -> float | None:
    try:
        rate = float(str(meta.get("sample_rate_hz", "")))
    except ValueError:
        return None
    return rate if rate > 0 else None


class _Writer:
    """The temp file, the current label and per-label accounting of one session."""

    def __init__(self, out: Path, header: str, label: str, timeline: _Clock, scales: BatchScales) -> None:
        self.out, self.timeline, self.label = out, timeline, label.strip()
        self.tmp = out.with_name(f".{out.name}.part")
        self.scales = scales
        self.samples = 0
        self._prev = 0.0  # t_s of the last sample written
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.switches: list[tuple[float, str]] = []
        self.fh = open(self.tmp, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed in close()
        self.fh.write(header)

    def switch(self, label: str) -> None:
        format_row(0.0, [0.0] * _NCH, label)  # a bad label is refused when it is chosen, not mid-file
        self.label = label.strip()
        self.switches.append((float(self.timeline.last or 0.0), self.label))

    def _scales_for(self, batch: DecodedBatch) -> np.ndarray:
        # JSON phone apps say their units; everything else is in the units the user gave.
        return self.scales.for_units(batch.acc_unit, batch.gyro_unit)

    def write(self, batch: DecodedBatch, arrived: float) -> int:
        t = self.timeline.times(batch, arrived)
        return self.write_seconds(t, np.asarray(batch.values, dtype=np.float64) * self._scales_for(batch))

    def write_seconds(self, t: np.ndarray, values: np.ndarray) -> int:
        """Rows at ``t`` (seconds since the first sample) of ``values`` already in g and rad/s."""
        if not len(t):
            return 0
        self.timeline.last = float(t[-1])
        label = self.label
        self.fh.write("".join(format_row(ts, vals, label)
                              for ts, vals in zip(t.tolist(), values.tolist(), strict=True)))
        # Each sample counts the time since the sample before it (its own period) towards its label.
        prev = t[0] - self.timeline.step if self.samples == 0 else self._prev
        spent = float(t[-1] - prev) if len(t) else 0.0
        self._prev = float(t[-1])
        self.seconds[label] = self.seconds.get(label, 0.0) + max(spent, 0.0)
        self.counts[label] = self.counts.get(label, 0) + len(t)
        self.samples += len(t)
        return len(t)

    def close(self) -> Path | None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        if self.samples:
            os.replace(self.tmp, self.out)
            return self.out
        self.tmp.unlink(missing_ok=True)
        return None


def _check_batch(batch: DecodedBatch, port: Port) -> None:
    if batch.parts is not None:
        raise WireError(f"{port.name} sends each sensor on its own clock (e.g. Sensor Logger); record needs one "
                        "clock for all 6 channels: use the app's combined/CSV mode or `hartool stream`")
    if batch.values.shape[1] != _NCH:
        raise WireError(
            f"device sends {batch.values.shape[1]} channels per sample; recordings need {_NCH} "
            "(acc x/y/z, gyro x/y/z)"
        )


def record(
    port: Port,
    decoder: TextDecoder | BinaryDecoder | AutoDecoder,
    out: str | os.PathLike[str],
    label: str = "",
    duration_s: float | None = None,
    meta: Mapping[str, object] | None = None,
    stop_event: threading.Event | None = None,
    *,
    events: queue.Queue[str] | None = None,
    aligner: AlignerFactory | None = None,
    time_unit: str = "auto",
    acc_unit: str = "g",
    gyro_unit: str = "rad/s",
    acc_lsb: float | None = None,
    gyro_lsb: float | None = None,
    flush_every_s: float = 1.0,
    read_size: int = 8192,
    clock: Callable[[], float] = time.monotonic,
    on_batch: Callable[[int], None] | None = None,
) -> RecordStats:
    """Read ``port`` through ``decoder`` (a text, binary or auto decoder) into the CSV file ``out``.

    The header holds ``meta`` in order (e.g. ``subject``, ``sample_rate_hz``) and ``units: acc=g
    gyro=rad/s``: values are converted from ``acc_unit``/``gyro_unit`` (``raw`` with ``*_lsb``, as in
    :func:`hartool.core.timebase.channel_scales`). Rows get ``label`` until a label name arrives on
    ``events`` (``""`` = unlabelled). Multi-clock batches go through ``aligner(layout)`` (else WireError).
    ``t_s`` is seconds since the first sample: device time (its unit from
    the decoder, ``time_unit``, or detected) when the stream has timestamps, else the host monotonic clock
    at arrival (then ``sample_rate_hz`` in ``meta`` spaces samples that arrived together). Ends after
    ``duration_s`` seconds (None: no limit), when ``stop_event`` is set, at the end of a file source, or
    when the device disappears; the rows so far are kept in every case, including Ctrl-C: the temp file is
    flushed every ``flush_every_s`` and renamed to ``out`` in ``finally``. A listening source (tcp-listen,
    udp, http, mqtt) whose sender leaves is reopened for the next one: the session goes on.
    ``on_batch(total_samples)`` is called after each decoded batch (progress display).

    Raises :class:`WireError` when the stream has not 6 channels, or when it ended without any sample.
    """
    out = Path(out)
    scales = BatchScales(record_channels(), acc_unit, gyro_unit, acc_lsb, gyro_lsb)  # bad units: refuse now
    header_meta = {k: v for k, v in (meta or {}).items() if k != "units"}
    header_meta["units"] = DEFAULT_UNITS
    header = format_header(header_meta)  # validates the keys before anything is created
    format_row(0.0, [0.0] * _NCH, label)  # validates the label the same way every row will
    out.parent.mkdir(parents=True, exist_ok=True)
    timeline = _Clock(_rate_of(header_meta), time_unit)
    writer = _Writer(out, header, label, timeline, scales)
    loop = _Loop(port, decoder, writer, events, stop_event, duration_s, clock, flush_every_s, read_size, on_batch)
    loop.aligner_factory = aligner
    try:
        loop.run()
    finally:
        written = writer.close()
        if loop.port is not port:
            loop.port.close()
    if not writer.samples:
        raise WireError(
            f"no samples received from {port.name} ({loop.nbytes} bytes read, {loop.end_reason}); "
            "check --baud and --protocol"
        )
    return RecordStats(
        path=written,
        samples=writer.samples,
        duration_s=float(timeline.last or 0.0),
        bytes_read=loop.nbytes,
        time_source=timeline.source or "host",
        end_reason=loop.end_reason,
        message=loop.message,
        decoder=decoder_counters(decoder),
        time_unit=timeline.device.unit if timeline.source == "device" else None,
        reconnects=loop.reconnects,
        label_seconds={k: round(v, 3) for k, v in writer.seconds.items()},
        label_samples=dict(writer.counts),
        switches=list(writer.switches),
    )


class _Loop:
    """The read / decode / label / write loop of one session."""

    def __init__(self, port: Port, decoder: TextDecoder | BinaryDecoder | AutoDecoder, writer: _Writer,
                 events: queue.Queue[str] | None, stop_event: threading.Event | None, duration_s: float | None,
                 clock: Callable[[], float], flush_every_s: float, read_size: int,
                 on_batch: Callable[[int], None] | None) -> None:
        self.port, self.decoder, self.writer, self.events = port, decoder, writer, events
        self.stop_event, self.duration_s, self.clock = stop_event, duration_s, clock
        self.flush_every_s, self.read_size, self.on_batch = flush_every_s, read_size, on_batch
        self.nbytes = 0
        self.original = port  # the caller's to close; ports reopened here are closed here
        self.reconnects = 0
        self.end_reason = "interrupted"
        self.message = ""
        # Batches held (with the label they arrived under) until the time unit is known.
        self.held: list[tuple[DecodedBatch, str, float]] = []
        self.aligner_factory: AlignerFactory | None = None
        self._aligner: Aligner | None = None
        self._layout: tuple[str, ...] = ()

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
        if self.duration_s is not None and self.clock() - start >= self.duration_s:
            self.end_reason = "duration"
            return True
        return False

    def run(self) -> None:
        start = last_flush = self.clock()
        try:
            while not self._ended(start):
                now = self.clock()
                if now - last_flush >= self.flush_every_s:
                    # Also while the source is quiet: what arrived is on disk within a second.
                    self.writer.fh.flush()
                    last_flush = now
                try:
                    data = self.port.read(self.read_size)
                except (DeviceGone, OSError) as exc:
                    if getattr(self.port, "listening", False):
                        if self._reconnect(start):
                            continue  # a phone's Wi-Fi dropped: the session goes on with its next connection
                        break  # stopped or out of time while waiting (end_reason says which)
                    self.end_reason, self.message = "disconnected", str(exc)
                    break
                # After the read: a switch made before these bytes arrived applies to them.
                self._drain_events()
                if not data:
                    if self.port.eof:
                        self.end_reason = "eof"
                        break
                    continue
                self.nbytes += len(data)
                batch = self.decoder.feed(data)
                if batch is not None and (batch.parts is not None or len(batch.values)):
                    self._take(batch)
        finally:
            self._release()

    def _reconnect(self, start: float) -> bool:
        """Wait for the listening source's next sender (until the session ends); False when it ended."""
        while not self._ended(start):
            self.writer.fh.flush()  # what the last sender sent is on disk while we wait for the next one
            try:
                port = self.port.reopen()  # type: ignore[attr-defined]
            except WireError:
                continue  # nobody yet: reopen() waited a moment, check stop/duration and wait again
            if self.port is not self.original:
                self.port.close()
            self.port = port
            self.reconnects += 1
            return True
        return False

    def _take(self, batch: DecodedBatch) -> None:
        if batch.parts is not None and self.aligner_factory is not None:
            self._parts(batch)
            return
        _check_batch(batch, self.port)
        timeline = self.writer.timeline
        if timeline.source is None:
            self.held.append((batch, self.writer.label, self.clock()))
            if timeline.needs_more(batch, sum(len(b.t) for b, _, _ in self.held if b.t is not None)):
                return
            self._release()
            return
        self._write(batch, self.clock())

    def _release(self) -> None:
        """Decide the clock from the held batches (also at the end, however few) and write them."""
        held, self.held = self.held, []
        if not held:
            return
        self.writer.timeline.start([b for b, _, _ in held])
        current = self.writer.label
        for batch, label, arrived in held:
            self.writer.label = label
            self._write(batch, arrived)
        self.writer.label = current

    def _parts(self, batch: DecodedBatch) -> None:
        """Sensors on their own clocks: device seconds, units, then the aligner's grid rows."""
        assert batch.parts is not None and self.aligner_factory is not None
        writer, clock = self.writer, self.writer.timeline.device
        if self._aligner is None or self._layout != batch.layout:
            # A sensor of the layout missing from this batch feeds the channel group its name says.
            known = {p.name: tuple(p.channels) for p in batch.parts}
            layout = {n: known.get(n, (3, 4, 5) if n.startswith("gyro") else (0, 1, 2)) for n in batch.layout}
            self._aligner, self._layout = self.aligner_factory(layout), tuple(batch.layout)
        writer.timeline.source = "device"
        clock.unit = clock.unit or batch.time_unit or "ns"
        firsts = [p.t[0] for p in batch.parts if len(p.t)]
        if clock.origin is None and firsts:
            clock.set_origin(min(firsts))
        scales = writer._scales_for(batch)
        for part in batch.parts:
            t = clock.seconds(part.t, batch.time_unit or clock.unit)
            for chunk in self._aligner.push(part.name, t, np.asarray(part.values) * scales[list(part.channels)]):
                writer.write_seconds(np.asarray(chunk.t), np.asarray(chunk.values))
        if self.on_batch is not None:
            self.on_batch(writer.samples)

    def _write(self, batch: DecodedBatch, arrived: float) -> None:
        self.writer.write(batch, arrived)
        if self.on_batch is not None:
            self.on_batch(self.writer.samples)
