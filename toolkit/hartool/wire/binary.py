"""The incremental decoder of a COBS/CRC binary frame stream (the frame format itself is :mod:`hartool.wire.frames`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hartool.core.errors import WireError
from hartool.core.timebase import Unwrap32
from hartool.wire.batch import DecodedBatch
from hartool.wire.frames import FLAG_TIMESTAMP, HEADER_SIZE, MAX_ENCODED_FRAME, check_payload, cobs_decode
from hartool.wire.prediction import PREDICTION_KIND, PredictionInbox, parse_prediction_payload

__all__ = ["BinaryDecoder"]


class BinaryDecoder(PredictionInbox):
    """Incremental decoder of a COBS/CRC frame stream; resynchronises on every 0x00 delimiter.

    Counters: ``frames`` (good), ``bad_frames`` (COBS / length / version / CRC / channel-count errors),
    ``samples``, ``dropped`` (samples lost in sequence gaps), ``seq_gaps`` (gap events) and ``seq_resets``
    (backward sequence jumps, i.e. a device restart, which are not counted as loss). Prediction frames
    (a board that classifies by itself) are collected for :meth:`take_predictions` (``predictions``); one
    with a good CRC but a bad layout counts in ``bad_predictions``, one with a bad CRC is a bad frame.
    """

    def __init__(
        self, expected_channels: int | None = None, max_frame_bytes: int = MAX_ENCODED_FRAME
    ) -> None:
        self.expected_channels = expected_channels
        self.max_frame_bytes = max_frame_bytes
        self.channels: int | None = None
        self.frames = 0
        self.bad_frames = 0
        self.samples = 0
        self.dropped = 0
        self.seq_gaps = 0
        self.seq_resets = 0
        super().__init__()
        #: bytes thrown away without counting a bad frame (the possibly cut frame at connect time).
        self.discarded_bytes = 0
        self._buf = bytearray()
        self._at_start = True  # bytes before the first delimiter may be the tail of a frame cut at connect
        self._skipping = False  # dropping the rest of an over-long run without a delimiter
        self._next_seq: int | None = None
        self._last_seq = 0
        self._last_t: float | None = None
        self._unwrap = Unwrap32()  # frames carry u32 milliseconds (wrapping every 49.7 days)
        self._period: float | None = None
        self._pending_dropped = 0
        self._gap_pending = False  # a gap was counted with no sample after it yet (it breaks the next batch)
        self._scale_cache: dict[bytes, np.ndarray] = {}  # scale bytes -> float32 array (a device has few)

    def feed(self, data: bytes) -> DecodedBatch | None:
        """Consume raw bytes; return the samples of the frames they complete, or None if there are none."""
        buf = self._buf
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)  # memoryview and friends have no rfind
        # The buffer never holds a delimiter between calls, so only the new bytes need searching.
        end = data.rfind(0)
        if end >= 0 and not buf:
            # Common case at speed: the read starts on a frame boundary; skip the buffer copies.
            chunk = data[:end]
            buf += data[end + 1 :]
        elif end >= 0:
            end += len(buf)
            buf += data
            chunk = bytes(buf[:end])
            del buf[: end + 1]
        else:
            buf += data
            self._check_overflow()
            return None
        pieces = bytes(chunk).split(b"\x00")
        if self._skipping:
            pieces[0] = b""  # tail of the over-long run, already counted
            self._skipping = False
        try:
            return self._decode_pieces(pieces)
        finally:
            self._at_start = False
            self._check_overflow()


    def _check_overflow(self) -> None:
        if len(self._buf) > self.max_frame_bytes:
            # No delimiter within the largest legal frame: garbage. Keep memory bounded, count it once.
            if self._at_start:
                self.discarded_bytes += len(self._buf)
            elif not self._skipping:
                self.bad_frames += 1
            self._skipping = True
            self._buf.clear()

    def _decode_pieces(self, pieces: list[bytes]) -> DecodedBatch | None:
        run = _Run(breaks=[0] if self._gap_pending else [])
        self._gap_pending = False
        for k, enc in enumerate(pieces):
            if not enc:
                continue  # back-to-back delimiters are legal keep-alives
            frame = self._parse(enc, first=k == 0 and self._at_start)
            if frame is not None:
                self._take(frame, run)
        if not run.groups and not run.cur_parts:
            self._gap_pending = self._gap_pending or bool(run.breaks)
            return None
        run.close_group()
        values = self._values(run.groups)
        t_arr = run.times(len(values))
        dropped, self._pending_dropped = self._pending_dropped, 0
        return DecodedBatch(values=values, t=t_arr, dropped=dropped, time_unit="ms", breaks=tuple(run.breaks))

    def _parse(self, enc: bytes, first: bool) -> tuple[bytes, tuple[int, int, int, int, int]] | None:
        """(payload, header) of a good frame of this stream's channel count; None (counted) otherwise."""
        try:
            payload = cobs_decode(enc)
            if payload[:1] == bytes((PREDICTION_KIND,)):
                self._keep_prediction(parse_prediction_payload, payload)
                return None
            header = check_payload(payload)
        except WireError:
            if first:
                self.discarded_bytes += len(enc)  # the tail of a frame cut at connect time
            else:
                self.bad_frames += 1
            return None
        nch = header[3]
        if self.channels is None:
            if self.expected_channels is not None and nch != self.expected_channels:
                raise WireError(f"device sends {nch} channels per sample, model expects {self.expected_channels}")
            self.channels = nch
        elif nch != self.channels:
            self.bad_frames += 1
            return None
        return payload, header


    def _take(self, frame: tuple[bytes, tuple[int, int, int, int, int]], run: _Run) -> None:
        payload, (flags, seq, t_ms, nch, nsamp) = frame
        self._track_seq(seq, run)
        if flags & FLAG_TIMESTAMP:
            t = self._track_time(seq, t_ms)
            if nsamp > 1 and self._period is None:
                run.times_known = False
            run.t_first.append(t)
            run.periods.append(self._period or 0.0)
        else:
            run.times_known = False
            self._last_t = None
        run.nsamps.append(nsamp)
        run.decoded += nsamp
        self._next_seq = (seq + nsamp) & 0xFFFF
        self.frames += 1
        self.samples += nsamp
        run.add(payload[HEADER_SIZE : HEADER_SIZE + 4 * nch], nch, memoryview(payload)[HEADER_SIZE + 4 * nch : -2])

    def _track_seq(self, seq: int, run: _Run) -> None:
        """Sequence bookkeeping: gaps below half the counter range are loss, larger jumps are restarts."""
        if self._next_seq is None:
            return
        gap = (seq - self._next_seq) & 0xFFFF
        if not gap:
            return
        if gap < 0x8000:
            self.seq_gaps += 1
            self.dropped += gap
            self._pending_dropped += gap
            if run.decoded not in run.breaks:
                run.breaks.append(run.decoded)
        else:
            self.seq_resets += 1
            self._last_t = None
            self._period = None

    def _track_time(self, seq: int, t_ms: int) -> float:
        """The frame's time on an unwrapped ms axis; updates the per-sample period estimate."""
        t = float(self._unwrap(np.asarray([t_ms]))[0])
        if self._last_t is not None:
            dseq = (seq - self._last_seq) & 0xFFFF
            if 0 < dseq < 0x8000 and t > self._last_t:
                self._period = (t - self._last_t) / dseq
        self._last_t = t
        self._last_seq = seq
        return t

    def _values(self, groups: list[tuple[bytes, int, list[memoryview]]]) -> np.ndarray:
        """Physical values of every group: one np.frombuffer per run of frames with the same scales."""
        blocks = []
        for scales, nch, parts in groups:
            scale_arr = self._scale_cache.get(scales)
            if scale_arr is None:
                if len(self._scale_cache) >= 16:
                    self._scale_cache.clear()  # bounded even if a device keeps changing its scales
                scale_arr = self._scale_cache[scales] = np.frombuffer(scales, "<f4").astype(np.float32)
            raw = parts[0] if len(parts) == 1 else b"".join(parts)
            # int16 * float32 -> float32: exact conversion, then one float32 multiply per value.
            blocks.append(np.frombuffer(raw, "<i2").reshape(-1, nch) * scale_arr)
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


@dataclass
class _Run:
    """What one ``feed`` collects from its frames before building the batch."""

    breaks: list[int]
    groups: list[tuple[bytes, int, list[memoryview]]] = field(default_factory=list)
    cur_scales: bytes = b""
    cur_nch: int = 0
    cur_parts: list[memoryview] = field(default_factory=list)
    t_first: list[float] = field(default_factory=list)
    nsamps: list[int] = field(default_factory=list)
    periods: list[float] = field(default_factory=list)
    decoded: int = 0
    times_known: bool = True

    def add(self, scales: bytes, nch: int, counts: memoryview) -> None:
        """Consecutive frames with identical channel scales are converted together."""
        if scales != self.cur_scales:
            self.close_group()
            self.cur_scales, self.cur_nch = scales, nch
        self.cur_parts.append(counts)

    def close_group(self) -> None:
        if self.cur_parts:
            self.groups.append((self.cur_scales, self.cur_nch, self.cur_parts))
            self.cur_parts = []

    def times(self, n: int) -> np.ndarray | None:
        """Per-sample times (ms): each frame's time plus its index times the estimated period."""
        if not self.times_known:
            return None
        t_arr = np.asarray(self.t_first, dtype=np.float64)
        if len(self.t_first) != n:
            ns = np.asarray(self.nsamps)
            starts = np.repeat(np.cumsum(ns) - ns, ns)
            within = np.arange(n) - starts
            t_arr = np.repeat(t_arr, ns) + within * np.repeat(np.asarray(self.periods), ns)
        return t_arr
