"""Binary framing of the hartool wire protocol: COBS, CRC-16/CCITT-FALSE, the frame header and int16 quantisation.

Specification and worked examples: firmware_bridge/PROTOCOL.md ("Binary frames"); golden vectors:
firmware_bridge/vectors/. The incremental stream decoder is :class:`hartool.wire.binary.BinaryDecoder`.
"""

from __future__ import annotations

import binascii
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hartool.core.errors import WireError

__all__ = [
    "ACC_SCALE_G",
    "BINARY_VERSION",
    "FLAG_TIMESTAMP",
    "GYRO_SCALE_RAD_S",
    "HEADER_SIZE",
    "MAX_ENCODED_FRAME",
    "Frame",
    "check_payload",
    "cobs_decode",
    "cobs_encode",
    "crc16_ccitt",
    "decode_frame",
    "encode_frame",
    "frame_from_values",
    "quantize",
]

# ---------------------------------------------------------------------------------------------------------
# Constants of the binary format (PROTOCOL.md, "Binary frames").

BINARY_VERSION = 1
FLAG_TIMESTAMP = 0x01
#: Firmware default scales: accelerometer ±16 g, gyroscope ±2000 dps expressed in rad/s.
ACC_SCALE_G = 1.0 / 2048.0
GYRO_SCALE_RAD_S = (2000.0 / 32768.0) * math.pi / 180.0

_HEADER = struct.Struct("<BBHIBB")  # version, flags, seq, t_ms, nch, nsamp
HEADER_SIZE = _HEADER.size  # 10
_CRC_SIZE = 2
_MIN_PAYLOAD = HEADER_SIZE + 4 + 2 + _CRC_SIZE  # one channel, one sample
_MAX_PAYLOAD = HEADER_SIZE + 4 * 255 + 2 * 255 * 255 + _CRC_SIZE
#: Largest COBS-encoded frame (without delimiter): one overhead byte per 254 payload bytes, plus one.
MAX_ENCODED_FRAME = _MAX_PAYLOAD + _MAX_PAYLOAD // 254 + 1

_INT16_MIN = -32768
_INT16_MAX = 32767


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


def check_payload(payload: bytes) -> tuple[int, int, int, int, int]:
    """Check a decoded payload; return (flags, seq, t_ms, nch, nsamp) or raise WireError with the reason."""
    n = len(payload)
    if n < _MIN_PAYLOAD:
        raise WireError(f"frame too short ({n} bytes)")
    version, flags, seq, t_ms, nch, nsamp = _HEADER.unpack_from(payload)
    if version != BINARY_VERSION:
        raise WireError(f"unsupported frame version {version}")
    if nch == 0 or nsamp == 0 or n != HEADER_SIZE + 4 * nch + 2 * nsamp * nch + _CRC_SIZE:
        raise WireError(f"frame length {n} does not match nch={nch} nsamp={nsamp}")
    if binascii.crc_hqx(memoryview(payload)[:-2], 0xFFFF) != payload[-2] | (payload[-1] << 8):
        raise WireError("frame CRC mismatch")
    return flags, seq, t_ms, nch, nsamp


def decode_frame(data: bytes) -> Frame:
    """Decode one encoded frame (with or without the trailing 0x00); raises WireError saying what is wrong."""
    if data.endswith(b"\x00"):
        data = data[:-1]
    payload = cobs_decode(data)
    flags, seq, t_ms, nch, nsamp = check_payload(payload)
    scales = np.frombuffer(payload, "<f4", nch, HEADER_SIZE)
    counts = np.frombuffer(payload, "<i2", nsamp * nch, HEADER_SIZE + 4 * nch).reshape(nsamp, nch)
    return Frame(seq, t_ms, scales, counts, bool(flags & FLAG_TIMESTAMP))
