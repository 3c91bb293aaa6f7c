"""``hartool record``: decode a device stream into a labeled CSV recording, written atomically (temp file + rename)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hartool.core.csvformat import VALUE_COLUMNS, format_header, format_row
from hartool.core.errors import WireError
from hartool.wire.codec import BinaryDecoder, DecodedBatch, TextDecoder
from hartool.wire.reader import AutoDecoder, decoder_counters
from hartool.wire.sources import DeviceGone, Port

__all__ = ["DEFAULT_UNITS", "RecordStats", "record"]

DEFAULT_UNITS = "acc=g gyro=rad/s"
_NCH = len(VALUE_COLUMNS)


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


class _Clock:
    """Turns batches into non-decreasing seconds since the first sample, from device or host time."""

    def __init__(self, rate_hz: float | None) -> None:
        self.step = 1.0 / rate_hz if rate_hz else 0.0
        self.source: str | None = None
        self.t0 = 0.0
        self.offset = 0.0
        self.last: float | None = None

    def times(self, batch: DecodedBatch, arrived: float) -> np.ndarray:
        n = len(batch.values)
        if self.source is None:
            # The first batch decides: mixing device and host clocks in one file would make t_s meaningless.
            self.source = "device" if batch.t_ms is not None else "host"
            if batch.t_ms is not None:
                self.t0 = float(batch.t_ms[0]) / 1000.0
            else:
                self.t0 = arrived - self.step * (n - 1)
        if self.source == "device" and batch.t_ms is not None:
            t = np.asarray(batch.t_ms, dtype=np.float64) / 1000.0 - self.t0 + self.offset
            if self.last is not None and t[0] < self.last:
                # The device clock restarted (board reset): continue the file's time line from here.
                self.offset += self.last + self.step - t[0]
                t = t + (self.last + self.step - t[0])
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


def record(
    port: Port,
    decoder: TextDecoder | BinaryDecoder | AutoDecoder,
    out: str | os.PathLike[str],
    label: str = "",
    duration_s: float | None = None,
    meta: Mapping[str, object] | None = None,
    stop_event: threading.Event | None = None,
    *,
    flush_every_s: float = 1.0,
    read_size: int = 8192,
    clock: Callable[[], float] = time.monotonic,
    on_batch: Callable[[int], None] | None = None,
) -> RecordStats:
    """Read ``port`` through ``decoder`` (a text, binary or auto decoder) into the CSV file ``out``.

    The header holds ``meta`` in order (e.g. ``subject``, ``sample_rate_hz``) plus ``units`` if missing;
    every row gets ``label``. ``t_s`` comes from the device timestamps when the stream has them, else from
    the host monotonic clock at arrival (then ``sample_rate_hz`` in ``meta`` spaces samples that arrived
    together). Ends after ``duration_s`` seconds (None: no limit), when ``stop_event`` is set, at the end
    of a file source, or when the device disappears; the rows so far are kept in every case, including
    Ctrl-C: the temp file is flushed every ``flush_every_s`` and renamed to ``out`` in ``finally``.
    ``on_batch(total_samples)`` is called after each decoded batch (progress display).

    Raises :class:`WireError` when the stream has not 6 channels, or when it ended without any sample.
    """
    out = Path(out)
    header_meta = dict(meta or {})
    header_meta.setdefault("units", DEFAULT_UNITS)
    header = format_header(header_meta)  # validates the keys before anything is created
    format_row(0.0, [0.0] * _NCH, label)  # validates the label the same way every row will
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    timeline = _Clock(_rate_of(header_meta))

    samples = 0
    nbytes = 0
    end_reason = "interrupted"
    message = ""
    written: Path | None = None
    start = clock()
    last_flush = start
    fh = open(tmp, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed in finally
    try:
        fh.write(header)
        while True:
            if stop_event is not None and stop_event.is_set():
                end_reason = "stopped"
                break
            now = clock()
            if duration_s is not None and now - start >= duration_s:
                end_reason = "duration"
                break
            try:
                data = port.read(read_size)
            except (DeviceGone, OSError) as exc:
                end_reason, message = "disconnected", str(exc)
                break
            if not data:
                if port.eof:
                    end_reason = "eof"
                    break
                continue
            nbytes += len(data)
            batch = decoder.feed(data)
            if batch is None or len(batch.values) == 0:
                continue
            if batch.values.shape[1] != _NCH:
                raise WireError(
                    f"device sends {batch.values.shape[1]} channels per sample; recordings need {_NCH} "
                    "(acc x/y/z, gyro x/y/z)"
                )
            t = timeline.times(batch, clock())
            rows = [
                format_row(ts, vals, label)
                for ts, vals in zip(t.tolist(), batch.values.tolist(), strict=True)
            ]
            fh.write("".join(rows))
            samples += len(rows)
            if on_batch is not None:
                on_batch(samples)
            if now - last_flush >= flush_every_s:
                fh.flush()
                last_flush = now
    finally:
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        if samples:
            os.replace(tmp, out)
            written = out
        else:
            tmp.unlink(missing_ok=True)
    if not samples:
        raise WireError(
            f"no samples received from {port.name} ({nbytes} bytes read, {end_reason}); "
            "check --baud and --protocol"
        )
    return RecordStats(
        path=written,
        samples=samples,
        duration_s=float(timeline.last or 0.0),
        bytes_read=nbytes,
        time_source=timeline.source or "host",
        end_reason=end_reason,
        message=message,
        decoder=decoder_counters(decoder),
    )
