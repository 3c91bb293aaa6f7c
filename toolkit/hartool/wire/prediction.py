"""Prediction messages: a board that classifies by itself sends a label, its probabilities and a window counter
instead of raw samples. The binary frame and the text line of PROTOCOL.md ("Prediction messages"), encoded and
parsed here; the stream decoders (:mod:`hartool.wire.binary`, :mod:`hartool.wire.text`) call the parsers.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import TypeVar

from hartool.core.errors import WireError
from hartool.wire.batch import DevicePrediction
from hartool.wire.frames import FLAG_TIMESTAMP, cobs_encode, crc16_ccitt

__all__ = [
    "PREDICTION_KIND",
    "BadPrediction",
    "PREDICTION_WORD",
    "encode_prediction_frame",
    "encode_prediction_line",
    "parse_prediction_line",
    "parse_prediction_payload",
    "prob_counts",
]

#: First payload byte of a prediction frame. A sample frame starts with its version (1); every decoder
#: rejects another version before reading anything else, so an older host counts this as one bad frame.
PREDICTION_KIND = 0x81
#: First token of a prediction text line: a word, so an older host skips the line as a header/banner.
PREDICTION_WORD = b"pred"
PROB_SCALE = 256  # probability = count / 256: the int8 softmax output's own quantization (scale 1/256)



class BadPrediction(WireError):
    """A prediction message that arrived intact (good CRC, or a whole text line) but is malformed."""


_Raw = TypeVar("_Raw")


class PredictionInbox:
    """A decoder's prediction messages: kept in arrival order until taken; a malformed one is counted in
    ``bad_predictions`` (it is not a lost sample). Shared by the binary and the text decoder."""

    def __init__(self) -> None:
        self.predictions = 0
        self.bad_predictions = 0
        self._predictions: list[DevicePrediction] = []

    def take_predictions(self) -> list[DevicePrediction]:
        """The prediction messages decoded since the last call, in arrival order."""
        out, self._predictions = self._predictions, []
        return out

    def _keep_prediction(self, parse: Callable[[_Raw], DevicePrediction], raw: _Raw) -> None:
        try:
            pred = parse(raw)
        except BadPrediction:
            self.bad_predictions += 1
            return
        self.predictions += 1
        self._predictions.append(pred)


_HEAD = struct.Struct("<BBIIBB")  # kind, flags, window, t_ms, label, nclass
_CRC = 2
_U32 = 0xFFFFFFFF


def prob_counts(probs: Sequence[float]) -> tuple[int, ...]:
    """Probabilities -> u8 counts: round(p * 256) half up, clamped to 0..255 (NaN -> 0).

    p * 256 is exact in float32 and float64 alike (a power of two), so every encoder gives the same bytes.
    """
    out = []
    for p in probs:
        x = float(p) * PROB_SCALE
        out.append(0 if math.isnan(x) else int(min(255.0, max(0.0, math.floor(x + 0.5)))))
    return tuple(out)


def _check(pred: DevicePrediction) -> int:
    n = len(pred.counts)
    if not 1 <= n <= 255 or not 0 <= pred.label < n or not 0 <= pred.window <= _U32:
        raise ValueError(f"prediction needs 1..255 classes, a label among them and a u32 window, got "
                         f"{n} classes, label {pred.label}, window {pred.window}")
    if pred.t_ms is not None and not 0 <= pred.t_ms <= _U32:
        raise ValueError(f"t_ms {pred.t_ms} is not a u32")
    return n


def encode_prediction_frame(pred: DevicePrediction) -> bytes:
    """A prediction as COBS(payload) + 0x00: kind, flags, window u32, t_ms u32, label, nclass, u8 counts, CRC."""
    n = _check(pred)
    flags = FLAG_TIMESTAMP if pred.t_ms is not None else 0
    body = _HEAD.pack(PREDICTION_KIND, flags, pred.window, pred.t_ms or 0, pred.label, n) + bytes(pred.counts)
    return cobs_encode(body + crc16_ccitt(body).to_bytes(2, "little")) + b"\x00"


def parse_prediction_payload(payload: bytes) -> DevicePrediction:
    """A decoded (un-COBSed) prediction payload: :class:`WireError` when too short or on a CRC mismatch (damaged: a bad
    frame), :class:`BadPrediction` when it arrived intact but is malformed (a length that does not match its class count, a bad label)."""
    n = len(payload)
    if n < _HEAD.size + 1 + _CRC:
        raise WireError(f"prediction frame too short ({n} bytes)")
    if crc16_ccitt(bytes(payload[:-2]), 0xFFFF) != payload[-2] | (payload[-1] << 8):
        raise WireError("prediction frame CRC mismatch")
    kind, flags, window, t_ms, label, ncls = _HEAD.unpack_from(payload)
    if kind != PREDICTION_KIND or ncls == 0 or n != _HEAD.size + ncls + _CRC:
        raise BadPrediction(f"prediction frame length {n} does not match {ncls} classes")
    if label >= ncls:
        raise BadPrediction(f"prediction label {label} is not one of {ncls} classes")
    counts = tuple(payload[_HEAD.size : _HEAD.size + ncls])
    return DevicePrediction(window, label, counts, t_ms if flags & FLAG_TIMESTAMP else None)


def encode_prediction_line(pred: DevicePrediction) -> bytes:
    """``pred,<window>,<t_ms or ->,<label>,<nclass>,<count>...`` + CRLF: integers only (no printf %f needed)."""
    n = _check(pred)
    t = "-" if pred.t_ms is None else str(pred.t_ms)
    fields = ["pred", str(pred.window), t, str(pred.label), str(n), *map(str, pred.counts)]
    return (",".join(fields) + "\r\n").encode("ascii")


def _uint(token: bytes, limit: int) -> int:
    if not token.isdigit() or len(token) > 10:
        raise BadPrediction(f"prediction field {token[:12]!r} is not an unsigned integer")
    value = int(token)
    if value > limit:
        raise BadPrediction(f"prediction field {value} is over {limit}")
    return value


def parse_prediction_line(tokens: Sequence[bytes]) -> DevicePrediction:
    """The tokens of a text line whose first token is ``pred``; :class:`BadPrediction` when malformed."""
    if len(tokens) < 6:
        raise BadPrediction(f"prediction line has {len(tokens)} fields")
    window = _uint(tokens[1], _U32)
    t_ms = None if tokens[2] == b"-" else _uint(tokens[2], _U32)
    label, ncls = _uint(tokens[3], 255), _uint(tokens[4], 255)
    if ncls == 0 or len(tokens) != 5 + ncls or label >= ncls:
        raise BadPrediction(f"prediction line: label {label} of {ncls} classes with {len(tokens) - 5} probabilities")
    return DevicePrediction(window, label, tuple(_uint(t, 255) for t in tokens[5:]), t_ms)
