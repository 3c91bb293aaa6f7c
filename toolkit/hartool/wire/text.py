"""Numeric text lines (CSV / TSV / space separated, optional timestamp, optional ``--columns`` layout):
the incremental :class:`TextDecoder` and the line encoder the simulators and vectors use.

Specification: firmware_bridge/PROTOCOL.md ("Text lines").
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence

import numpy as np

from hartool.core.errors import WireError
from hartool.wire.batch import ColumnLayout, DecodedBatch
from hartool.wire.prediction import PREDICTION_WORD, PredictionInbox, parse_prediction_line

__all__ = ["PRINTABLE", "TextDecoder", "encode_text_line"]

# Separators (comma, tab, CR; VT/FF too, which bytes.split() and C isspace also treat as blanks) become
# spaces, so the slow path (bytes.split) and the fast path (np.fromstring) see the same token boundaries.
_SEP_TABLE = bytes.maketrans(b",\t\r\x0b\x0c", b"     ")
PRINTABLE = bytes(range(0x20, 0x7F))
_FAST_PATH_MIN_LINES = 4  # measured: below this the fixed cost of the chunk path beats its gain


class TextDecoder(PredictionInbox):
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
    after detection, i.e. samples lost; each is reported once in a batch's ``dropped``). Lines whose first
    field is ``pred`` are prediction messages of a board that classifies by itself: collected for
    :meth:`take_predictions` (``predictions``), or counted in ``bad_predictions`` when malformed (not a lost sample).
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
        super().__init__()
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
        if tokens[0] == PREDICTION_WORD and fits:
            self._keep_prediction(parse_prediction_line, tokens)
            return
        vals = _parse_tokens(tokens) if fits else None
        if vals is None:
            # Printable text with a word in it is a header or banner ("aX,aY,aZ", "MPU6050 ready");
            # anything else (control bytes, "1.2,3#4") is line noise.
            if (
                fits
                and not b" ".join(tokens).translate(None, PRINTABLE)
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
