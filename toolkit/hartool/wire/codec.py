"""Host codec for the hartool wire protocol: text lines (optionally laid out by ``--columns``) and COBS/CRC-16 binary frames.

Specification and worked examples: firmware_bridge/PROTOCOL.md; golden vectors: firmware_bridge/vectors/.
JSON app schemas (Sensor Logger, HyperIMU, named fields) are in :mod:`hartool.wire.jsoncodec`; every decoder
returns :class:`DecodedBatch`.
"""

from __future__ import annotations

import binascii
import math
import re
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hartool.core.errors import WireError

__all__ = [
    "ACC_SCALE_G",
    "BINARY_VERSION",
    "FLAG_TIMESTAMP",
    "GYRO_SCALE_RAD_S",
    "MAX_ENCODED_FRAME",
    "DEFAULT_CHANNEL_NAMES",
    "BinaryDecoder",
    "ColumnLayout",
    "DecodedBatch",
    "Frame",
    "SensorPart",
    "TextDecoder",
    "cobs_decode",
    "cobs_encode",
    "crc16_ccitt",
    "decode_frame",
    "encode_frame",
    "encode_text_line",
    "frame_from_values",
    "parse_columns",
    "quantize",
    "sniff_protocol",
]

# ---------------------------------------------------------------------------------------------------------
# Constants of the binary format (PROTOCOL.md, "Binary frames").

BINARY_VERSION = 1
FLAG_TIMESTAMP = 0x01
#: Firmware default scales: accelerometer ±16 g, gyroscope ±2000 dps expressed in rad/s.
ACC_SCALE_G = 1.0 / 2048.0
GYRO_SCALE_RAD_S = (2000.0 / 32768.0) * math.pi / 180.0

_HEADER = struct.Struct("<BBHIBB")  # version, flags, seq, t_ms, nch, nsamp
_HEADER_SIZE = _HEADER.size  # 10
_CRC_SIZE = 2
_MIN_PAYLOAD = _HEADER_SIZE + 4 + 2 + _CRC_SIZE  # one channel, one sample
_MAX_PAYLOAD = _HEADER_SIZE + 4 * 255 + 2 * 255 * 255 + _CRC_SIZE
#: Largest COBS-encoded frame (without delimiter): one overhead byte per 254 payload bytes, plus one.
MAX_ENCODED_FRAME = _MAX_PAYLOAD + _MAX_PAYLOAD // 254 + 1

_INT16_MIN = -32768
_INT16_MAX = 32767

#: The channel order of hartool's 6-axis models (acc in g, gyro in rad/s), used when a caller names none.
DEFAULT_CHANNEL_NAMES: tuple[str, ...] = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


# ---------------------------------------------------------------------------------------------------------
# Primitives


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, no reflection, xorout 0); pass ``crc`` to continue a running CRC.

    ``binascii.crc_hqx`` is exactly this CRC with a caller-chosen initial value, and runs in C, which keeps
    the per-frame cost of the binary decoder low on a slow core.
    """
    return binascii.crc_hqx(data, crc)


def cobs_encode(data: bytes) -> bytes:
    """Consistent-overhead byte stuffing of ``data`` (the 0x00 frame delimiter is not appended)."""
    out = bytearray()
    # Splitting on zero lets the C-level bytes.split find the blocks instead of a per-byte Python loop.
    pieces = bytes(data).split(b"\x00")
    last = len(pieces) - 1
    for k, piece in enumerate(pieces):
        length = len(piece)
        start = 0
        while length - start >= 254:
            out.append(0xFF)
            out += piece[start : start + 254]
            start += 254
        rem = length - start
        # A trailing full 0xFF block already ends the data; an extra 0x01 would be legal but is not canonical.
        if rem or not (k == last and length):
            out.append(rem + 1)
            out += piece[start:]
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; raises :class:`WireError` on a malformed block."""
    n = len(data)
    if n == 0:
        raise WireError("COBS: empty frame")
    if data.find(0) >= 0:
        raise WireError("COBS: zero byte inside a frame")
    out = bytearray(data)
    removed: list[int] = []
    i = 0
    code = data[0]
    # Walk the code bytes only (one step per zero or per 254-byte run): each later code byte position
    # becomes the zero it stands for, except after a full 0xFF block, where no zero was encoded.
    while True:
        nxt = i + code
        if nxt >= n:
            if nxt > n:
                raise WireError("COBS: block runs past the end of the frame")
            break
        if code == 0xFF:
            removed.append(nxt)
        else:
            out[nxt] = 0
        i = nxt
        code = data[i]
    if not removed:
        return bytes(out[1:])
    parts = []
    prev = 1
    for pos in removed:
        parts.append(out[prev:pos])
        prev = pos + 1
    parts.append(out[prev:])
    return b"".join(parts)


def quantize(values: np.ndarray | Sequence[float], scales: np.ndarray | Sequence[float]) -> np.ndarray:
    """Physical values → int16 counts: value/scale rounded half away from zero, saturated to int16.

    NaN becomes 0 and ±inf saturates, so a sensor glitch never wraps around to the opposite sign.
    """
    x = np.asarray(values, dtype=np.float64) / np.asarray(scales, dtype=np.float32).astype(np.float64)
    x = np.nan_to_num(x, nan=0.0, posinf=_INT16_MAX, neginf=_INT16_MIN)
    x = np.clip(x, _INT16_MIN, _INT16_MAX)
    # Half away from zero (not numpy's half-to-even) because that is what the C and MicroPython encoders do.
    return np.trunc(x + np.copysign(0.5, x)).astype(np.int16)


# ---------------------------------------------------------------------------------------------------------
# Frames


@dataclass(frozen=True, eq=False)
class Frame:
    """One binary frame: ``nsamp`` samples of ``nch`` int16 counts plus their per-channel scales."""

    seq: int
    t_ms: int
    scales: np.ndarray
    counts: np.ndarray
    has_timestamp: bool = True

    def __post_init__(self) -> None:
        # Own copies: the caller's buffers (or a decoded payload) must not alias a frozen frame.
        scales = np.array(self.scales, dtype=np.float32).reshape(-1)
        raw = np.asarray(self.counts)
        if raw.dtype != np.int16 and raw.size and (raw.min() < _INT16_MIN or raw.max() > _INT16_MAX):
            raise ValueError("counts outside int16; use frame_from_values() to quantise with saturation")
        counts = np.array(raw, dtype=np.int16)
        if counts.ndim == 1:
            counts = counts.reshape(1, -1)
        if counts.ndim != 2 or counts.shape[1] != scales.size:
            raise ValueError(f"counts shape {counts.shape} does not match {scales.size} scales")
        if not 1 <= scales.size <= 255 or not 1 <= counts.shape[0] <= 255:
            raise ValueError(f"a frame holds 1..255 channels and 1..255 samples, got {counts.shape}")
        if not 0 <= self.seq <= 0xFFFF or not 0 <= self.t_ms <= 0xFFFFFFFF:
            raise ValueError(f"seq {self.seq} or t_ms {self.t_ms} out of range (u16, u32)")
        object.__setattr__(self, "scales", scales)
        object.__setattr__(self, "counts", counts)

    @property
    def nch(self) -> int:
        return int(self.scales.size)

    @property
    def nsamp(self) -> int:
        return int(self.counts.shape[0])

    @property
    def values(self) -> np.ndarray:
        """Physical values, float32 (nsamp, nch): count × scale."""
        return self.counts.astype(np.float32) * self.scales


def frame_from_values(
    values: np.ndarray | Sequence[Sequence[float]],
    seq: int,
    t_ms: int,
    scales: np.ndarray | Sequence[float],
    has_timestamp: bool = True,
) -> Frame:
    """Quantise physical ``values`` (nsamp, nch) with saturation into a :class:`Frame`; seq/t_ms wrap."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    sc = np.asarray(scales, dtype=np.float32).reshape(-1)
    return Frame(
        seq=int(seq) & 0xFFFF,
        t_ms=int(t_ms) & 0xFFFFFFFF,
        scales=sc,
        counts=quantize(arr, sc),
        has_timestamp=has_timestamp,
    )


def _payload(frame: Frame) -> bytes:
    flags = FLAG_TIMESTAMP if frame.has_timestamp else 0
    body = b"".join(
        (
            _HEADER.pack(BINARY_VERSION, flags, frame.seq, frame.t_ms, frame.nch, frame.nsamp),
            frame.scales.astype("<f4").tobytes(),
            frame.counts.astype("<i2").tobytes(),
        )
    )
    return body + crc16_ccitt(body).to_bytes(2, "little")


def encode_frame(frame: Frame) -> bytes:
    """Frame → COBS(payload) + b"\\x00", ready to write to the wire."""
    return cobs_encode(_payload(frame)) + b"\x00"


def _check_payload(payload: bytes) -> tuple[int, int, int, int, int]:
    """Check a decoded payload; return (flags, seq, t_ms, nch, nsamp) or raise WireError with the reason."""
    n = len(payload)
    if n < _MIN_PAYLOAD:
        raise WireError(f"frame too short ({n} bytes)")
    version, flags, seq, t_ms, nch, nsamp = _HEADER.unpack_from(payload)
    if version != BINARY_VERSION:
        raise WireError(f"unsupported frame version {version}")
    if nch == 0 or nsamp == 0 or n != _HEADER_SIZE + 4 * nch + 2 * nsamp * nch + _CRC_SIZE:
        raise WireError(f"frame length {n} does not match nch={nch} nsamp={nsamp}")
    if binascii.crc_hqx(memoryview(payload)[:-2], 0xFFFF) != payload[-2] | (payload[-1] << 8):
        raise WireError("frame CRC mismatch")
    return flags, seq, t_ms, nch, nsamp


def decode_frame(data: bytes) -> Frame:
    """Decode one encoded frame (with or without the trailing 0x00); raises WireError saying what is wrong."""
    if data.endswith(b"\x00"):
        data = data[:-1]
    payload = cobs_decode(data)
    flags, seq, t_ms, nch, nsamp = _check_payload(payload)
    scales = np.frombuffer(payload, "<f4", nch, _HEADER_SIZE)
    counts = np.frombuffer(payload, "<i2", nsamp * nch, _HEADER_SIZE + 4 * nch).reshape(nsamp, nch)
    return Frame(seq, t_ms, scales, counts, bool(flags & FLAG_TIMESTAMP))


# ---------------------------------------------------------------------------------------------------------
# Decoders


@dataclass
class SensorPart:
    """Readings of one sensor on its own clock (Sensor Logger sends acc, gravity and gyro apart).

    ``channels`` are the model channel indices of ``values``' columns; parts naming the same channels are
    summed after alignment (accelerometer + gravity = the total acceleration the models are trained on).
    """

    name: str
    channels: tuple[int, ...]
    values: np.ndarray  # float (n, len(channels)), in the batch's units
    t: np.ndarray  # (n,) raw device time in the batch's time_unit


@dataclass
class DecodedBatch:
    """Samples decoded by one ``feed()`` call, in arrival order.

    Single-clock sources fill ``values`` (model channel order) and ``t``; multi-clock sources (Sensor
    Logger) fill ``parts`` and ``layout`` (the names of every part the source sends) and leave ``values``
    empty. ``time_unit`` is the unit of the raw times ("s", "ms", "us", "ns"), None when the decoder cannot
    know (text: ``--time-unit`` or auto detection decide). ``acc_unit``/``gyro_unit`` are set when the format
    defines its units (JSON apps); None means "as the user says". ``breaks`` are sample indices before which
    samples were lost (binary sequence gaps): windows must not span them.
    """

    values: np.ndarray  # float32 (n, nch)
    t: np.ndarray | None  # (n,) raw device time, or None when not every sample has one
    dropped: int  # samples known lost before/among these (binary: seq gaps; text: bad lines after detection)
    # time.perf_counter_ns() when the bytes completing the batch were read; set by the reader thread.
    received_ns: int = 0
    time_unit: str | None = None
    acc_unit: str | None = None
    gyro_unit: str | None = None
    breaks: tuple[int, ...] = ()
    parts: list[SensorPart] | None = None
    layout: tuple[str, ...] = ()

    @property
    def t_ms(self) -> np.ndarray | None:
        """Device time in milliseconds (raw text times are returned as sent, the pre-timebase behaviour)."""
        if self.t is None or self.time_unit in (None, "ms"):
            return self.t
        scale = {"s": 1e3, "us": 1e-3, "ns": 1e-6}[self.time_unit]
        return np.asarray(self.t, dtype=np.float64) * scale

    @property
    def samples(self) -> int:
        """Device samples in the batch (for a multi-clock batch: readings of all its sensors)."""
        if self.parts is not None:
            return sum(len(p.t) for p in self.parts)
        return len(self.values)


@dataclass(frozen=True)
class ColumnLayout:
    """Where the time and each model channel sit in a text line (``--columns``)."""

    names: tuple[str, ...]  # the --columns list as given
    time_col: int | None
    channel_cols: tuple[int, ...]  # one per model channel, in model order

    @property
    def min_fields(self) -> int:
        return len(self.names)


def parse_columns(spec: str, channel_names: Sequence[str]) -> ColumnLayout:
    """Parse ``--columns t,acc_x,...`` against the model's channels; one-line :class:`WireError` when wrong.

    Each field is ``t`` (the timestamp), a model channel name, or ``-`` (ignored); fields past the list are
    ignored. Unknown names, duplicates and channels the model needs but the list misses are errors.
    """
    names = tuple(n.strip() for n in spec.split(","))
    if not spec.strip() or any(not n for n in names):
        raise WireError(f"--columns {spec!r}: empty field name (use '-' for a field to ignore)")
    known = set(channel_names) | {"t", "-"}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise WireError(f"--columns names unknown channel {unknown[0]!r}; the model's channels are "
                        f"{', '.join(channel_names)} (plus 't' for the timestamp and '-' to skip a field)")
    dup = sorted({n for n in names if n != "-" and names.count(n) > 1})
    if dup:
        raise WireError(f"--columns names {dup[0]!r} twice")
    missing = [c for c in channel_names if c not in names]
    if missing:
        raise WireError(f"--columns misses {', '.join(missing)}, which the model needs")
    time_col = names.index("t") if "t" in names else None
    return ColumnLayout(names, time_col, tuple(names.index(c) for c in channel_names))


class BinaryDecoder:
    """Incremental decoder of a COBS/CRC frame stream; resynchronises on every 0x00 delimiter.

    Counters: ``frames`` (good), ``bad_frames`` (COBS / length / version / CRC / channel-count errors),
    ``samples``, ``dropped`` (samples lost in sequence gaps), ``seq_gaps`` (gap events) and ``seq_resets``
    (backward sequence jumps, i.e. a device restart, which are not counted as loss).
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
        #: bytes thrown away without counting a bad frame (the possibly cut frame at connect time).
        self.discarded_bytes = 0
        self._buf = bytearray()
        self._at_start = True  # bytes before the first delimiter may be the tail of a frame cut at connect
        self._skipping = False  # dropping the rest of an over-long run without a delimiter
        self._next_seq: int | None = None
        self._last_seq = 0
        self._last_t: float | None = None
        self._last_t_raw = 0
        self._t_offset = 0
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

        # Consecutive frames with identical channel scales are converted with one np.frombuffer.
        groups: list[tuple[bytes, int, list[memoryview]]] = []
        cur_scales = b""
        cur_parts: list[memoryview] = []
        cur_nch = 0
        t_first: list[float] = []
        nsamps: list[int] = []
        breaks: list[int] = [0] if self._gap_pending else []
        self._gap_pending = False
        decoded = 0
        periods: list[float] = []
        times_known = True
        unpack = _HEADER.unpack_from
        crc = binascii.crc_hqx

        for k, enc in enumerate(pieces):
            if not enc:
                continue  # back-to-back delimiters are legal keep-alives
            first = k == 0 and self._at_start
            try:
                payload = cobs_decode(enc)
                n = len(payload)
                if n < _MIN_PAYLOAD:
                    raise WireError("short frame")
                version, flags, seq, t_ms, nch, nsamp = unpack(payload)
                if (
                    version != BINARY_VERSION
                    or nch == 0
                    or nsamp == 0
                    or n != _HEADER_SIZE + 4 * nch + 2 * nsamp * nch + _CRC_SIZE
                ):
                    raise WireError("bad header")
                mv = memoryview(payload)
                if crc(mv[:-2], 0xFFFF) != payload[-2] | (payload[-1] << 8):
                    raise WireError("bad crc")
            except WireError:
                if first:
                    self.discarded_bytes += len(enc)
                else:
                    self.bad_frames += 1
                continue

            if self.channels is None:
                if self.expected_channels is not None and nch != self.expected_channels:
                    raise WireError(
                        f"device sends {nch} channels per sample, model expects {self.expected_channels}"
                    )
                self.channels = nch
            elif nch != self.channels:
                self.bad_frames += 1
                continue

            # Sequence bookkeeping: gaps below half the counter range are loss, larger jumps are restarts.
            if self._next_seq is not None:
                gap = (seq - self._next_seq) & 0xFFFF
                if gap:
                    if gap < 0x8000:
                        self.seq_gaps += 1
                        self.dropped += gap
                        self._pending_dropped += gap
                        if decoded not in breaks:
                            breaks.append(decoded)
                    else:
                        self.seq_resets += 1
                        self._last_t = None
                        self._period = None
            if flags & FLAG_TIMESTAMP:
                if (
                    self._last_t is not None
                    and t_ms < self._last_t_raw
                    and self._last_t_raw - t_ms > 0x80000000
                ):
                    self._t_offset += 0x100000000  # u32 millisecond counter wrapped (every 49.7 days)
                t = float(t_ms + self._t_offset)
                if self._last_t is not None:
                    dseq = (seq - self._last_seq) & 0xFFFF
                    if 0 < dseq < 0x8000 and t > self._last_t:
                        self._period = (t - self._last_t) / dseq
                self._last_t = t
                self._last_t_raw = t_ms
                self._last_seq = seq
                if nsamp > 1 and self._period is None:
                    times_known = False
                t_first.append(t)
                periods.append(self._period or 0.0)
            else:
                times_known = False
                self._last_t = None
            nsamps.append(nsamp)
            decoded += nsamp
            self._next_seq = (seq + nsamp) & 0xFFFF
            self.frames += 1
            self.samples += nsamp

            scales = payload[_HEADER_SIZE : _HEADER_SIZE + 4 * nch]
            if scales != cur_scales:
                if cur_parts:
                    groups.append((cur_scales, cur_nch, cur_parts))
                cur_scales, cur_nch, cur_parts = scales, nch, []
            cur_parts.append(mv[_HEADER_SIZE + 4 * nch : -2])

        if cur_parts:
            groups.append((cur_scales, cur_nch, cur_parts))
        if not groups:
            self._gap_pending = self._gap_pending or bool(breaks)
            return None

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
        values = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

        t_arr = None
        if times_known:
            t_arr = np.asarray(t_first, dtype=np.float64)
            if len(t_first) != len(values):
                ns = np.asarray(nsamps)
                starts = np.repeat(np.cumsum(ns) - ns, ns)
                within = np.arange(len(values)) - starts
                t_arr = np.repeat(t_arr, ns) + within * np.repeat(np.asarray(periods), ns)
        dropped, self._pending_dropped = self._pending_dropped, 0
        return DecodedBatch(values=values, t=t_arr, dropped=dropped, time_unit="ms", breaks=tuple(breaks))


# Separators (comma, tab, CR; VT/FF too, which bytes.split() and C isspace also treat as blanks) become
# spaces, so the slow path (bytes.split) and the fast path (np.fromstring) see the same token boundaries.
_SEP_TABLE = bytes.maketrans(b",\t\r\x0b\x0c", b"     ")
_PRINTABLE = bytes(range(0x20, 0x7F))
_FAST_PATH_MIN_LINES = 4  # measured: below this the fixed cost of the chunk path beats its gain


class TextDecoder:
    """Incremental decoder of numeric text lines (CSV / TSV / space separated, optional leading timestamp).

    Detection: the first line after connecting may be cut and is never used; then ``detect_lines``
    consecutive numeric lines with the same number of values fix the column count. With
    ``expected_channels`` = E, a count of E means no timestamp and E + 1 means the first column is a
    timestamp; more than E + 1 whose first column is integral and increasing is read as timestamp + E
    channels + extra fields that are ignored (HyperIMU sends magnetometer and more after the gyro; ``note``
    says so); anything else raises :class:`WireError`. Without it, a count of 4, 7 or 10 whose first
    column is integral and strictly increasing is read as timestamp + 3/6/9 channels. ``columns`` (from
    :func:`parse_columns`) fixes the layout instead; lines must then have at least as many fields as it
    names. ``time_unit`` is passed on in each batch (None: the stream decides).

    Counters: ``lines`` (non-blank lines seen), ``bad_lines`` (garbage, wrong count, NaN/inf, over-long),
    ``header_lines`` (printable non-numeric text with a word in it), ``samples``, ``dropped`` (bad lines
    after detection, i.e. samples lost; each is reported once in a batch's ``dropped``).
    """

    def __init__(
        self,
        expected_channels: int | None = None,
        detect_lines: int = 3,
        *,
        skip_first_line: bool = True,
        max_line_bytes: int = 256,
        columns: ColumnLayout | None = None,
        time_unit: str | None = None,
    ) -> None:
        if detect_lines < 1:
            raise ValueError("detect_lines must be >= 1")
        if columns is not None:
            expected_channels = len(columns.channel_cols)
        self.expected_channels = expected_channels
        self.columns = columns
        self.time_unit = time_unit
        self.note: str | None = None  # how the layout was read, when worth telling the user
        self._raw_cols = 0
        self._t_col: int | None = None
        self._ch_cols: np.ndarray | None = None  # None: all columns after the optional time, in order
        self.detect_lines = detect_lines
        self.max_line_bytes = max_line_bytes
        self.channels: int | None = None
        self.has_timestamp = False
        self.lines = 0
        self.bad_lines = 0
        self.header_lines = 0
        self.samples = 0
        self.dropped = 0
        self._skip_first = skip_first_line
        self._buf = bytearray()
        self._overlong = False
        self._candidates: list[list[float]] = []
        self._pending_dropped = 0
        self._line_re: re.Pattern[bytes] | None = None
        self._line_re_cols = 0
        self._long_re = re.compile(rb"[^\n]{%d,}" % (max_line_bytes + 1))

    @property
    def _ncols(self) -> int:
        assert self.channels is not None
        return self._raw_cols

    def feed(self, data: bytes) -> DecodedBatch | None:
        """Consume raw bytes; return the samples of the lines they complete, or None if there are none."""
        buf = self._buf
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        end = data.rfind(b"\n")  # the buffer holds no newline between calls: search the new bytes only
        if end >= 0:
            end += len(buf)
        buf += data
        rows: list[np.ndarray] = []
        if end >= 0:
            chunk = bytes(buf[: end + 1])
            del buf[: end + 1]
            if self._overlong or self._skip_first:
                cut = chunk.find(b"\n") + 1
                if self._skip_first and not self._overlong and chunk[:cut].translate(_SEP_TABLE).split():
                    self.lines += 1  # the possibly cut first line: seen, never used
                self._overlong = self._skip_first = False
                chunk = chunk[cut:]
            if chunk:
                self._decode_chunk(chunk, rows)
        if len(buf) > self.max_line_bytes:
            # A line this long is not IMU data; drop it now so memory stays bounded, count it once.
            if not self._overlong:
                self._skip_first = False
                self.lines += 1
                self._bad()
            self._overlong = True
            buf.clear()
        if not rows:
            return None
        block = rows[0] if len(rows) == 1 else np.concatenate(rows)
        self.samples += len(block)
        dropped, self._pending_dropped = self._pending_dropped, 0
        if self._ch_cols is not None:
            values = block[:, self._ch_cols].astype(np.float32)
        elif self.has_timestamp:
            values = block[:, 1:].astype(np.float32)
        else:
            values = block.astype(np.float32)
        t = block[:, self._t_col].copy() if self._t_col is not None else None
        return DecodedBatch(values=values, t=t, dropped=dropped, time_unit=self.time_unit)

    def _bad(self, n: int = 1) -> None:
        self.bad_lines += n
        if self.channels is not None:
            # After detection a bad line is a lost sample: report it like a binary sequence gap.
            self.dropped += n
            self._pending_dropped += n

    def _decode_chunk(self, chunk: bytes, rows: list[np.ndarray]) -> None:
        if self.channels is not None and chunk.count(b"\n") >= _FAST_PATH_MIN_LINES and chunk.isascii():
            block = self._fast_block(chunk)
            if block is not None:
                rows.append(block)
                return
        out: list[list[float]] = []
        for line in chunk.split(b"\n"):
            self._slow_line(line, out)
        if out:
            rows.append(np.asarray(out, dtype=np.float64).reshape(len(out), -1))

    def _fast_block(self, chunk: bytes) -> np.ndarray | None:
        """Parse a chunk of complete lines in a few C-level calls; None means 'not clean, use the slow path'.

        One regex match checks that every line has exactly ncols tokens (no blank lines), another that no
        line is over-long; then np.fromstring parses all numbers at once. Few calls matter more than
        vectorised byte work here: on a slow core each numpy call costs tens of microseconds.
        """
        ncols = self._ncols
        if self._line_re is None or self._line_re_cols != ncols:
            tok = rb"[^\s]+"
            self._line_re = re.compile(rb"(?: *" + tok + rb"(?: +" + tok + rb"){%d} *\n)+" % (ncols - 1))
            self._line_re_cols = ncols
        t = chunk.translate(_SEP_TABLE)
        if self._line_re.fullmatch(t) is None or self._long_re.search(t) is not None:
            return None
        nrows = t.count(b"\n")
        try:
            with warnings.catch_warnings():
                # numpy < 2.3 only warns (and returns a short array) on an unparsable token.
                warnings.simplefilter("ignore", DeprecationWarning)
                flat = np.fromstring(t.decode("latin-1"), dtype=np.float64, sep=" ")
        except ValueError:
            return None
        if flat.size != nrows * ncols:
            return None
        block = flat.reshape(nrows, ncols)
        self.lines += nrows
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            self._bad(int(nrows - finite.sum()))
            block = block[finite]
        return block

    def _slow_line(self, line: bytes, out: list[list[float]]) -> None:
        tokens = line.translate(_SEP_TABLE).split()
        if not tokens:
            return
        self.lines += 1
        fits = len(line) <= self.max_line_bytes
        vals = _parse_tokens(tokens) if fits else None
        if vals is None:
            # Printable text with a word in it is a header or banner ("aX,aY,aZ", "MPU6050 ready");
            # anything else (control bytes, "1.2,3#4") is line noise.
            if (
                fits
                and not b" ".join(tokens).translate(None, _PRINTABLE)
                and any(t[:1].isalpha() for t in tokens)
            ):
                self.header_lines += 1
            else:
                self._bad()
            return
        if self.channels is not None:
            if len(vals) == self._ncols and all(map(math.isfinite, vals)):
                out.append(vals)
            else:
                self._bad()
            return
        # Detection phase.
        if not all(map(math.isfinite, vals)):
            self._bad()
            return
        cand = self._candidates
        if cand and len(cand[0]) != len(vals):
            self._bad(len(cand))  # an inconsistent run: those lines were not samples of the final layout
            cand.clear()
        cand.append(vals)
        if len(cand) >= self.detect_lines:
            self._decide(cand)
            out.extend(cand)
            cand.clear()

    def _decide(self, cand: list[list[float]]) -> None:
        count = len(cand[0])
        exp = self.expected_channels
        self._raw_cols = count
        first = [row[0] for row in cand]
        looks_like_time = all(v >= 0 and v == int(v) for v in first) and all(
            b > a for a, b in zip(first, first[1:], strict=False)
        )
        if self.columns is not None:
            if count < self.columns.min_fields:
                raise WireError(f"device sends {count} values per line, --columns names {self.columns.min_fields}")
            self.channels, self.has_timestamp = exp, self.columns.time_col is not None
            self._t_col = self.columns.time_col
            self._ch_cols = np.asarray(self.columns.channel_cols)
            return
        if exp is not None:
            if count == exp:
                self.channels, self.has_timestamp = exp, False
            elif count == exp + 1:
                self.channels, self.has_timestamp, self._t_col = exp, True, 0
            elif count > exp + 1 and looks_like_time:
                # HyperIMU-style: timestamp, the model's channels, then sensors the model does not use.
                self.channels, self.has_timestamp, self._t_col = exp, True, 0
                self._ch_cols = np.arange(1, exp + 1)
                self.note = (f"reading the first column as time and the next {exp} as the model's channels; "
                             f"{count - exp - 1} more fields per line ignored (use --columns to choose)")
            else:
                raise WireError(f"device sends {count} values per line, model expects {exp}")
            return
        looks_like_time = count in (4, 7, 10) and looks_like_time
        self.has_timestamp = looks_like_time
        self._t_col = 0 if looks_like_time else None
        self.channels = count - 1 if looks_like_time else count


def _parse_tokens(tokens: list[bytes]) -> list[float] | None:
    try:
        vals = [float(tok) for tok in tokens]
    except ValueError:
        return None
    # float() accepts "1_000"; numpy's parser (the fast path) does not, and neither does any firmware.
    if any(b"_" in tok for tok in tokens):
        return None
    return vals


def encode_text_line(values: Sequence[float], t_ms: int | None = None, decimals: int = 4) -> bytes:
    """One text sample line: optional integer timestamp, then ``%.{decimals}f`` values; commas, CRLF."""
    fmt = "%." + str(int(decimals)) + "f"
    fields = [fmt % float(v) for v in values]
    if t_ms is not None:
        fields.insert(0, str(int(t_ms)))
    return (",".join(fields) + "\r\n").encode("ascii")


# ---------------------------------------------------------------------------------------------------------
# Protocol sniffing


def sniff_protocol(data: bytes) -> str:
    """Guess the wire format of a captured byte sample: "binary", "text", "json" or "unknown".

    A decodable frame is proof of binary, a complete line holding a JSON object of JSON. Otherwise: text
    never contains 0x00 and is mostly printable with newlines; binary has 0x00 delimiters and high-entropy
    bytes around them.
    """
    from hartool.wire.jsoncodec import looks_like_json  # jsoncodec builds on this module

    n = len(data)
    if n == 0:
        return "unknown"
    printable = n - len(bytes(data).translate(None, _PRINTABLE + b"\t\r\n"))
    zeros = data.count(0)
    texty = printable >= 0.95 * n and b"\n" in data
    if zeros == 0:
        if b"\n" in data and looks_like_json(data):
            return "json"
        return "text" if texty else "unknown"
    probe = BinaryDecoder()
    try:
        probe.feed(bytes(data))
    except WireError:
        pass
    if probe.frames:
        return "binary"
    if texty:
        return "text"
    hist = np.bincount(np.frombuffer(bytes(data), np.uint8), minlength=256)
    p = hist[hist > 0] / n
    entropy = float(-(p * np.log2(p)).sum())
    if n >= 16 and entropy >= 3.0 and printable < 0.9 * n:
        return "binary"
    return "unknown"
