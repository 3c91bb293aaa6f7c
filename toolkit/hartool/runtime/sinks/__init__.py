"""Sinks: where classified windows go besides stdout (an MQTT broker, a live web page).

Every sink is an extra consumer of ``run_stream``'s ``on_window`` callback. That callback runs on the
classifier's thread and its time counts in the end-to-end latency, so a sink's ``on_window`` only hands the
window over (a bounded queue, a lock-protected ring) and returns; network work happens on the sink's own
threads. ``close(summary)`` ends the sink and returns its counters (merged into the stream summary).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["LIVE_KEYS", "FanOut", "Sink"]

# The stream counters the live page shows besides windows and drops.
LIVE_KEYS = ("bad_lines", "bad_frames", "reconnects", "dropped_queue", "dropped_wire", "seq_gaps")


@runtime_checkable
class Sink(Protocol):
    """What the stream needs from an output: a cheap non-blocking ``on_window`` and a ``close``."""

    def on_window(self, prediction: Any) -> None: ...

    def counters(self) -> dict[str, Any]: ...

    def close(self, summary: Any = None) -> dict[str, Any]: ...


class FanOut:
    """Calls the primary ``on_window`` consumer (e.g. stdout printing) and then every sink, in order."""

    def __init__(self, sinks: Sequence[Sink], primary: Callable[[Any], None] | None = None) -> None:
        self.sinks = list(sinks)
        self.primary = primary
        self._live: Callable[[], Any] | None = None

    def attach_live_counters(self, stats: Callable[[], Any]) -> None:
        """Let the stream driver hand over its running counters (a thread-safe ``stats()`` returning a dict or
        a dataclass such as ``ReaderStats``); the live page shows bad lines and reconnects from it."""
        self._live = stats

    def live_counters(self) -> dict[str, Any]:
        """The driver's running counters that the page shows (empty until a driver attached them)."""
        if self._live is None:
            return {}
        raw = self._live()
        data = raw if isinstance(raw, dict) else asdict(raw) if is_dataclass(raw) else {}
        return {k: data[k] for k in LIVE_KEYS if k in data}

    def __call__(self, prediction: Any) -> None:
        if self.primary is not None:
            self.primary(prediction)
        for sink in self.sinks:
            sink.on_window(prediction)

    def counters(self) -> dict[str, Any]:
        """All sinks' live counters in one dict (keys are prefixed by each sink: ``mqtt_``, ``page_``)."""
        merged: dict[str, Any] = {}
        for sink in self.sinks:
            merged.update(sink.counters())
        return merged

    def close(self, summary: Any = None) -> dict[str, Any]:
        """Close every sink, last opened first, and merge their final counters."""
        merged: dict[str, Any] = {}
        for sink in reversed(self.sinks):
            merged.update(sink.close(summary))
        return merged
