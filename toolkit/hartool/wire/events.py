"""What the reader thread hands to its consumer besides batches: :class:`ReaderEvent`, and its counters
(:class:`ReaderStats`)."""

from __future__ import annotations

from dataclasses import dataclass

from hartool.core.errors import WireError

__all__ = ["ReaderEvent", "ReaderStats"]


@dataclass(frozen=True)
class ReaderEvent:
    """Something the stream loop may want to tell the user about, queued in order with the batches.

    ``kind``:
      * ``"protocol"``: auto-detection picked ``text``, ``binary`` or ``json``, or switched after a bad start.
      * ``"hint"``: bytes arrive but nothing decodes (probably the baud rate or the protocol).
      * ``"door"``: a listening port refused something (the first of each kind, with the peer's address).
      * ``"disconnected"``: the device went away; ``final`` unless the reader will reconnect.
      * ``"reconnected"``: the port is open again; decoding restarts (windows should restart too).
      * ``"eof"``: a file / stdin source ended (final).
      * ``"gave_up"``: reconnecting failed ``max_reconnect_attempts`` times (final).
      * ``"error"``: a fatal error, ``error`` holds it; :meth:`ReaderThread.get` raises it (final).
    """

    kind: str
    message: str
    final: bool = False
    error: WireError | None = None


@dataclass(frozen=True)
class ReaderStats:
    """Cumulative counters of a reader (over reconnects)."""

    bytes_read: int
    samples: int  # decoded (delivered = samples - dropped_queue)
    batches: int  # put into the queue
    dropped_queue: int  # decoded, then dropped because the consumer fell behind (queue full)
    dropped_wire: (
        int  # lost on the wire as the decoder reports it (binary seq gaps, text bad lines once locked)
    )
    lines: int
    bad_lines: int
    header_lines: int
    frames: int
    bad_frames: int
    seq_gaps: int
    discarded_bytes: int
    disconnects: int
    reconnects: int
    protocol: str | None
    hint: str | None
    predictions: int = 0  # prediction messages of a board that classifies by itself
    bad_predictions: int = 0  # prediction messages that arrived whole but malformed
