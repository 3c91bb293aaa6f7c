"""hartool wire encoder for MicroPython and CPython: COBS, CRC-16/CCITT-FALSE, binary frames, text lines, and
prediction messages (frame and line) for a board that classifies by itself.

Device-side twin of the host codecs (toolkit/hartool/wire/frames.py, binary.py, text.py), written independently on purpose:
both must reproduce firmware_bridge/vectors/ byte for byte. Runs on MicroPython (single-precision floats,
no numpy, no f-strings) and on CPython (the tests).
"""

import math
import struct

VERSION = 1
FLAG_TIMESTAMP = 0x01
HEADER_SIZE = 10
PREDICTION_KIND = 0x81  # first payload byte of a prediction frame (a sample frame starts with VERSION)
PREDICTION_HEADER_SIZE = 12

# Default scales as exact float32 bit patterns, so that a single-precision MicroPython port and CPython
# put the same four bytes on the wire (computing pi/180 in float32 would round differently).
ACC_SCALE_G = struct.unpack("<f", b"\x00\x00\x00\x3a")[0]  # 1/2048 g per count (±16 g)
GYRO_SCALE_RAD_S = struct.unpack("<f", b"\x58\xa0\x8b\x3a")[0]  # (2000/32768)*pi/180 rad/s per count
DEFAULT_SCALES = (ACC_SCALE_G, ACC_SCALE_G, ACC_SCALE_G, GYRO_SCALE_RAD_S, GYRO_SCALE_RAD_S, GYRO_SCALE_RAD_S)

_crc_table = None


def _make_crc_table():
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        table.append(c & 0xFFFF)
    return table


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, unreflected, xorout 0) of ``data``."""
    global _crc_table
    if _crc_table is None:
        _crc_table = _make_crc_table()  # built on first use: 256 ints of RAM only on devices that need it
    table = _crc_table
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ b) & 0xFF]
    return crc


def cobs_encode(data):
    """COBS-encode ``data`` (bytes/bytearray); the 0x00 delimiter is not appended."""
    n = len(data)
    out = bytearray(n + n // 254 + 2)
    code_pos = 0
    code = 1
    o = 1
    for i in range(n):
        b = data[i]
        if b:
            out[o] = b
            o += 1
            code += 1
            if code == 0xFF:
                out[code_pos] = code
                if i + 1 == n:
                    return bytes(out[:o])  # a full block ends the data: no trailing empty block
                code_pos = o
                o += 1
                code = 1
        else:
            out[code_pos] = code
            code_pos = o
            o += 1
            code = 1
    out[code_pos] = code
    return bytes(out[:o])


def to_f32(x):
    """Round a float to the nearest float32 (a no-op on single-precision ports)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def quantize(value, scale):
    """Physical value -> int16 count: round half away from zero of value/scale, saturating; NaN -> 0."""
    x = value / scale
    if x != x:
        return 0
    if x >= 32767:
        return 32767
    if x <= -32768:
        return -32768
    if x >= 0:
        return int(x + 0.5)
    return -int(0.5 - x)


def pack_payload(seq, t_ms, scales, samples, has_timestamp=True):
    """Frame payload (before COBS) including its CRC; ``samples`` is a list of per-sample value sequences."""
    nch = len(scales)
    nsamp = len(samples)
    if not (1 <= nch <= 255 and 1 <= nsamp <= 255):
        raise ValueError("1..255 channels and 1..255 samples per frame")
    size = HEADER_SIZE + 4 * nch + 2 * nsamp * nch + 2
    buf = bytearray(size)
    flags = FLAG_TIMESTAMP if has_timestamp else 0
    struct.pack_into("<BBHIBB", buf, 0, VERSION, flags, seq & 0xFFFF, t_ms & 0xFFFFFFFF, nch, nsamp)
    off = HEADER_SIZE
    f32_scales = []
    for s in scales:
        s = to_f32(s)  # quantise against the scale the host will actually multiply by
        f32_scales.append(s)
        struct.pack_into("<f", buf, off, s)
        off += 4
    for sample in samples:
        for ch in range(nch):
            struct.pack_into("<h", buf, off, quantize(sample[ch], f32_scales[ch]))
            off += 2
    crc = crc16(memoryview(buf)[: size - 2])
    struct.pack_into("<H", buf, off, crc)
    return buf


def encode_frame(seq, t_ms, scales, samples, has_timestamp=True):
    """Complete wire frame: COBS(payload) + b"\\x00"."""
    return cobs_encode(pack_payload(seq, t_ms, scales, samples, has_timestamp)) + b"\x00"


def format_value(v, decimals=4):
    """Fixed-point decimal like C's "%.4f" via integer arithmetic (printf float support is patchy on MCUs)."""
    if math.isnan(v):
        return "nan"
    neg = math.copysign(1.0, v) < 0  # "-0.0000" for negative zero and tiny negatives, like printf
    a = -v if neg else v
    if math.isinf(a):
        return "-inf" if neg else "inf"
    ip = int(a)
    if decimals <= 0:
        frac = 0
        ip = int(a + 0.5)
    else:
        p = 10**decimals
        # The integer part is split off first (exactly) so that single-precision ports do not lose
        # fractional digits in a * p.
        frac = int((a - ip) * p + 0.5)
        if frac >= p:
            frac -= p
            ip += 1
    s = str(ip)
    if decimals > 0:
        digits = str(frac)
        s = s + "." + "0" * (decimals - len(digits)) + digits
    return "-" + s if neg else s


def format_text_line(values, t_ms=None, decimals=4):
    """Text sample line: [t_ms,]v1,v2,...\\r\\n as bytes."""
    fields = [format_value(v, decimals) for v in values]
    if t_ms is not None:
        fields.insert(0, str(t_ms & 0xFFFFFFFF))
    return (",".join(fields) + "\r\n").encode()


class Framer:
    """Collects samples into frames of ``per_frame`` samples; a frame's seq is its first sample's index."""

    def __init__(self, scales=DEFAULT_SCALES, per_frame=1, has_timestamp=True, seq=0):
        self.scales = tuple(scales)
        self.per_frame = per_frame
        self.has_timestamp = has_timestamp
        self.seq = seq & 0xFFFF  # index of the next sample, mod 65536
        self._samples = []
        self._first_seq = 0
        self._t_first = 0

    def add(self, values, t_ms):
        """Queue one sample taken at device time ``t_ms``; return the encoded frame once full, else None."""
        if not self._samples:
            self._first_seq = self.seq
            self._t_first = t_ms
        self._samples.append(tuple(values))
        self.seq = (self.seq + 1) & 0xFFFF
        if len(self._samples) < self.per_frame:
            return None
        return self.flush()

    def flush(self):
        """Encode the queued samples now (a shorter frame, e.g. before a pause); None if nothing is queued."""
        if not self._samples:
            return None
        frame = encode_frame(self._first_seq, self._t_first, self.scales, self._samples, self.has_timestamp)
        self._samples = []
        return frame

    def skip(self, n):
        """Count ``n`` samples that were never taken (timer overrun) so that the host sees a sequence gap.

        Samples in a frame must be consecutive, so a partly filled frame is flushed first; the returned
        frame (or None) must still be sent.
        """
        frame = self.flush()
        self.seq = (self.seq + n) & 0xFFFF
        return frame


def prob_count(p):
    """Probability -> u8 count: round(p * 256) half up, clamped to 0..255; NaN -> 0 (p * 256 is exact)."""
    x = p * 256.0
    if x != x or x <= 0:
        return 0
    if x >= 255.0:
        return 255
    return int(x + 0.5)


def _prediction_fields(label, probs):
    n = len(probs)
    if not (1 <= n <= 255 and 0 <= label < n):
        raise ValueError("1..255 classes and a label among them")
    return [prob_count(p) for p in probs]


def encode_prediction(window, label, probs, t_ms=None):
    """Prediction frame: COBS(kind, flags, window u32, t_ms u32, label, nclass, u8 counts, CRC) + b"\x00"."""
    counts = _prediction_fields(label, probs)
    n = len(counts)
    buf = bytearray(PREDICTION_HEADER_SIZE + n + 2)
    flags = FLAG_TIMESTAMP if t_ms is not None else 0
    struct.pack_into("<BBIIBB", buf, 0, PREDICTION_KIND, flags, window & 0xFFFFFFFF,
                     (t_ms or 0) & 0xFFFFFFFF, label, n)
    buf[PREDICTION_HEADER_SIZE : PREDICTION_HEADER_SIZE + n] = bytes(counts)
    struct.pack_into("<H", buf, PREDICTION_HEADER_SIZE + n, crc16(memoryview(buf)[: PREDICTION_HEADER_SIZE + n]))
    return cobs_encode(buf) + b"\x00"


def format_prediction_line(window, label, probs, t_ms=None):
    """Prediction line: pred,window,t_ms (or -),label,nclass,count...\r\n as bytes (integers only)."""
    counts = _prediction_fields(label, probs)
    t = "-" if t_ms is None else str(t_ms & 0xFFFFFFFF)
    fields = ["pred", str(window & 0xFFFFFFFF), t, str(label), str(len(counts))] + [str(c) for c in counts]
    return (",".join(fields) + "\r\n").encode()
