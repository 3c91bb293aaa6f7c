"""The JSON line decoder: one JSON document (or a list of them) per line, each read by the app schema that claims it.

The schemas (Sensor Logger, HyperIMU, named fields) are in :mod:`hartool.wire.apps`; a stream keeps the
schema of its first good document, and documents of another schema are counted as bad lines.

Counters: ``lines``, ``bad_lines`` (not JSON, or no schema fits), ``bad_batches`` (a Sensor Logger object
without a usable payload), ``samples`` (readings), ``unknown_sensors`` (readings of sensors the model does
not use), ``dropped`` (always 0: a JSON line is a batch, not a sample).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hartool.wire.apps.base import AppSchema, ModelChannels
from hartool.wire.apps.registry import schema_of
from hartool.wire.batch import DEFAULT_CHANNEL_NAMES, DecodedBatch

__all__ = ["MAX_LINE_BYTES", "JsonDecoder"]

MAX_LINE_BYTES = 4 << 20


class JsonDecoder:
    """Incremental decoder of JSON lines into :class:`DecodedBatch` (see the module docstring)."""

    def __init__(self, channel_names: Sequence[str] | None = None, *, skip_first_line: bool = False,
                 time_unit: str | None = None) -> None:
        self.channel_names = list(channel_names or DEFAULT_CHANNEL_NAMES)
        self.channels = len(self.channel_names)
        self.model = ModelChannels.of(self.channel_names)
        self.time_unit = time_unit
        self.app: AppSchema | None = None  # the stream's schema, fixed by its first good document
        self.lines = 0
        self.bad_lines = 0
        self.bad_batches = 0
        self.samples = 0
        self.dropped = 0
        self.unknown_sensors = 0
        self.unknown_names: set[str] = set()
        self._skip_first = skip_first_line
        self._buf = bytearray()

    def feed(self, data: bytes) -> DecodedBatch | None:
        """Consume bytes; return the samples of the complete lines among them, or None."""
        buf = self._buf
        buf += data
        end = buf.rfind(b"\n")
        if end < 0:
            if len(buf) > MAX_LINE_BYTES:
                self.lines += 1
                self.bad_lines += 1
                buf.clear()
            return None
        chunk = bytes(buf[:end])
        del buf[: end + 1]
        for line in chunk.split(b"\n"):
            text = line.strip()
            if not text:
                continue
            first, self._skip_first = self._skip_first, False
            self.lines += 1
            try:
                doc = json.loads(text)
            except ValueError:
                if not first:  # a live port may start mid-line: the first line is never held against it
                    self.bad_lines += 1
                continue
            for item in doc if isinstance(doc, list) else [doc]:
                self._dispatch(item)
        return None if self.app is None else self.app.batch()

    def _dispatch(self, doc: Any) -> None:
        kind = schema_of(doc, self.channel_names)
        if kind is None or (self.app is not None and not isinstance(self.app, kind)):
            self.bad_lines += 1
            return
        if self.app is None:
            self.app = kind(self.model, self, self.time_unit)
        self.app.add(doc)
