"""Choosing the decoder: ``--protocol`` names it, or :class:`AutoDecoder` sniffs the first bytes of a connection.

Only the reader thread (:mod:`hartool.wire.reader`) uses this module; the decoders themselves are
:mod:`hartool.wire.text`, :mod:`hartool.wire.binary` and :mod:`hartool.wire.jsoncodec`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from hartool.core.errors import WireError
from hartool.wire.batch import ColumnLayout, DecodedBatch, DevicePrediction
from hartool.wire.binary import BinaryDecoder
from hartool.wire.jsoncodec import MAX_LINE_BYTES, JsonDecoder
from hartool.wire.text import PRINTABLE, TextDecoder

__all__ = [
    "PROTOCOLS",
    "AutoDecoder",
    "Decoder",
    "decoder_counters",
    "looks_like_json",
    "make_decoder",
    "protocol_of",
    "sniff_protocol",
    "take_predictions",
]

PROTOCOLS: tuple[str, ...] = ("auto", "text", "binary", "json")
_RESNIFFABLE = ("text", "binary")  # byte-stream formats a bad start may have mistaken for each other
Decoder = TextDecoder | BinaryDecoder | JsonDecoder

# Decoder counters that are summed over reconnects (each connection gets a fresh decoder).
_COUNTERS = (
    "samples",
    "lines",
    "bad_lines",
    "header_lines",
    "frames",
    "bad_frames",
    "dropped",
    "seq_gaps",
    "seq_resets",
    "discarded_bytes",
    "bad_batches",
    "unknown_sensors",
    "predictions",
    "bad_predictions",
)




class AutoDecoder:
    """Buffers the first bytes until :func:`sniff_protocol` names the format, then decodes with that decoder.

    The sniff runs once ``sniff_bytes`` arrived or the buffer holds a few line / frame delimiters, so slow
    streams are not held up. While the format is unknown the buffer keeps only the newest
    ``max_sniff_bytes`` (the rest is counted in ``discarded_bytes``).

    A bad start does not lock the stream in: until the chosen text or binary decoder yields its first
    sample, every ``sniff_bytes`` the newest bytes are sniffed again, and when they name the other of the
    two the stream switches, replaying the latest read and the ``max_sniff_bytes`` before it into the new decoder (64 KB of line
    noise at connect, then clean text lines, still gives the lines). The bytes left behind are counted in
    ``discarded_bytes``.
    """

    def __init__(
        self,
        expected_channels: int | None = None,
        skip_first_line: bool = True,
        sniff_bytes: int = 256,
        max_sniff_bytes: int = 4096,
        **decoder_kw: object,
    ) -> None:
        self.expected_channels = expected_channels
        self.skip_first_line = skip_first_line
        self.decoder_kw = decoder_kw
        self.sniff_bytes = sniff_bytes
        self.max_sniff_bytes = max_sniff_bytes
        self.protocol: str | None = None
        self.inner: Decoder | None = None
        self.sniff_discarded = 0
        self._buf = bytearray()  # before detection: what is sniffed; after: the newest bytes, for a re-sniff
        self._fed = 0  # bytes fed to the current inner decoder
        self._unsniffed = 0  # bytes since the last re-sniff

    @property
    def channels(self) -> int | None:
        return None if self.inner is None else self.inner.channels

    @property
    def samples(self) -> int:
        return 0 if self.inner is None else self.inner.samples

    def feed(self, data: bytes) -> DecodedBatch | None:
        if self.inner is not None:
            batch = self.inner.feed(data)
            if (batch is None and self.inner.samples == 0 and not getattr(self.inner, "predictions", 0)
                    and self.protocol in _RESNIFFABLE):
                return self._resniff(data)
            return batch
        buf = self._buf
        buf += data
        if len(buf) < self.sniff_bytes and buf.count(b"\n") < 4 and buf.count(0) < 3:
            return None
        if buf.lstrip()[:1] in (b"{", b"[") and b"\n" not in buf and len(buf) < MAX_LINE_BYTES:
            return None  # a JSON document (a Sensor Logger batch can be 100 KB): wait for its end
        kind = sniff_protocol(bytes(buf))
        if kind == "unknown":
            if len(buf) > self.max_sniff_bytes:
                cut = len(buf) - self.max_sniff_bytes
                self.sniff_discarded += cut
                del buf[:cut]
            return None
        return self._start(kind)

    def _start(self, kind: str) -> DecodedBatch | None:
        """Decode with ``kind`` from now on, starting with the bytes held in the buffer."""
        self.protocol = kind
        self.inner = make_decoder(kind, self.expected_channels, self.skip_first_line,
                                  **self.decoder_kw)  # type: ignore[arg-type]
        pending = bytes(self._buf)
        self._fed, self._unsniffed = len(pending), 0
        if kind not in _RESNIFFABLE:
            self._buf.clear()
        return self.inner.feed(pending)

    def _resniff(self, data: bytes) -> DecodedBatch | None:
        """No sample yet: sniff the newest bytes again; switch when they name the other stream format."""
        buf = self._buf
        if len(buf) > self.max_sniff_bytes:  # trimmed before the new bytes: the whole latest read stays
            del buf[: len(buf) - self.max_sniff_bytes]
        buf += data
        self._fed += len(data)
        self._unsniffed += len(data)
        if self._unsniffed < self.sniff_bytes:
            return None
        self._unsniffed = 0
        kind = sniff_protocol(bytes(buf[-2 * self.sniff_bytes :]))
        if kind not in _RESNIFFABLE or kind == self.protocol:
            return None
        self.sniff_discarded += self._fed - len(buf)
        return self._start(kind)


def make_decoder(
    protocol: str,
    expected_channels: int | None = None,
    skip_first_line: bool = True,
    *,
    channel_names: Sequence[str] | None = None,
    columns: ColumnLayout | None = None,
    time_unit: str | None = None,
) -> Decoder | AutoDecoder:
    """The decoder for ``--protocol`` (``auto`` | ``text`` | ``binary`` | ``json``).

    ``skip_first_line=False`` is for sources that start at a line boundary (file replay); a live port may
    start in the middle of a line, which the text decoder then ignores. ``channel_names`` (the model's, in
    order) are what JSON fields are matched against; ``columns`` lays out text lines; ``time_unit`` (None:
    auto) is passed on with text and named-field JSON times.
    """
    if channel_names is not None and expected_channels is None:
        expected_channels = len(channel_names)
    if protocol == "text":
        return TextDecoder(expected_channels=expected_channels, skip_first_line=skip_first_line,
                           columns=columns, time_unit=time_unit)
    if protocol == "binary":
        return BinaryDecoder(expected_channels=expected_channels)
    if protocol == "json":
        names = channel_names
        if names is None and expected_channels not in (None, 6):
            raise WireError("JSON needs the model's channel names")
        return JsonDecoder(names, skip_first_line=skip_first_line, time_unit=time_unit)
    if protocol == "auto":
        return AutoDecoder(expected_channels=expected_channels, skip_first_line=skip_first_line,
                           channel_names=channel_names, columns=columns, time_unit=time_unit)
    raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def decoder_counters(decoder: object) -> dict[str, int]:
    """The integer counters a decoder (text, binary or auto) has, by name; absent ones are left out."""
    inner = decoder.inner if isinstance(decoder, AutoDecoder) else decoder
    out = {
        name: int(getattr(inner, name)) for name in _COUNTERS if inner is not None and hasattr(inner, name)
    }
    if isinstance(decoder, AutoDecoder):
        out["discarded_bytes"] = out.get("discarded_bytes", 0) + decoder.sniff_discarded
    return out


def take_predictions(decoder: object) -> list[DevicePrediction]:
    """The prediction messages a decoder (text, binary or auto) collected since the last call; JSON has none."""
    inner = decoder.inner if isinstance(decoder, AutoDecoder) else decoder
    take = getattr(inner, "take_predictions", None)
    return take() if take is not None else []


def protocol_of(decoder: object) -> str | None:
    if isinstance(decoder, AutoDecoder):
        return decoder.protocol
    if isinstance(decoder, BinaryDecoder):
        return "binary"
    if isinstance(decoder, TextDecoder):
        return "text"
    if isinstance(decoder, JsonDecoder):
        return "json"
    return None


def sniff_protocol(data: bytes) -> str:
    """Guess the wire format of a captured byte sample: "binary", "text", "json" or "unknown".

    A decodable frame (samples or a prediction) is proof of binary, a complete line holding a JSON object of JSON. Otherwise: text
    never contains 0x00 and is mostly printable with newlines; binary has 0x00 delimiters and high-entropy
    bytes around them.
    """
    n = len(data)
    if n == 0:
        return "unknown"
    printable = n - len(bytes(data).translate(None, PRINTABLE + b"\t\r\n"))
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
    if probe.frames or probe.predictions:
        return "binary"
    if texty:
        return "text"
    hist = np.bincount(np.frombuffer(bytes(data), np.uint8), minlength=256)
    p = hist[hist > 0] / n
    entropy = float(-(p * np.log2(p)).sum())
    if n >= 16 and entropy >= 3.0 and printable < 0.9 * n:
        return "binary"
    return "unknown"


def looks_like_json(data: bytes) -> bool:
    """True when a complete line of ``data`` is a JSON object or array."""
    for line in bytes(data).split(b"\n")[:-1] or [bytes(data)]:
        text = line.strip()
        if text[:1] in (b"{", b"["):
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            if isinstance(doc, (dict, list)):
                return True
    return False
