"""Sinks: where classified windows go (stdout lines, JSONL, an MQTT broker, a live web page), registered in one place.

A sink is an object with a cheap, non-blocking ``on_window(prediction)``, ``counters()`` and
``close(summary) -> counters``. ``on_window`` runs on the classifier's thread and its time counts in the
end-to-end latency, so a sink only hands the window over (a bounded queue, a lock-protected ring) and
returns; network work happens on the sink's own threads.

A *sink type* (:class:`SinkType`) says which options turn a sink on, how to open it and how its final
counters read in the summary. :data:`SINK_TYPES` lists them: adding a sink is one new module with a
``SinkType`` and one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Protocol, TextIO, runtime_checkable

from ...core.errors import HartoolError

__all__ = ["LIVE_KEYS", "SINK_TYPES", "FanOut", "Sink", "SinkContext", "SinkOption", "SinkType", "open_sinks",
           "sink_types", "summary_lines"]

# The registry: "module:attribute" of every SinkType, in the order their sinks see each window (stdout first).
SINK_TYPES: tuple[str, ...] = (
    "hartool.runtime.sinks.lines:LINES",
    "hartool.runtime.sinks.jsonl:JSONL",
    "hartool.runtime.sinks.build:MQTT",
    "hartool.runtime.sinks.build:PAGE",
)

# The stream counters the live page shows besides windows and drops.
LIVE_KEYS = ("bad_lines", "bad_frames", "reconnects", "dropped_queue", "dropped_wire", "seq_gaps")


@runtime_checkable
class Sink(Protocol):
    """What the stream needs from an output: a cheap non-blocking ``on_window`` and a ``close``."""

    def on_window(self, prediction: Any) -> None: ...

    def counters(self) -> dict[str, Any]: ...

    def close(self, summary: Any = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SinkOption:
    """One command-line option of a sink type (the CLI turns it into a click option named ``--flag``).

    ``kind``: ``text``, ``flag``, ``int`` (``minimum``..``maximum``) or ``file`` (an existing file).
    ``needs``: the option (dest) without which this one is an error (``--tls`` needs ``--publish``).
    """

    flag: str
    help: str
    kind: str = "text"
    default: Any = None
    metavar: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    needs: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass
class SinkContext:
    """What a sink type may need to open its sink: the model, where stdout data goes, status, other sinks."""

    labels: Sequence[str]
    out: TextIO
    title: str = "hartool"
    model: str = ""
    reconnect: bool = False  # the source reconnects: start without a broker and keep trying
    on_status: Callable[[str], None] = lambda _m: None
    live_counters: Callable[[], dict[str, Any]] = dict
    opened: list[Sink] = field(default_factory=list)  # the sinks opened before this one


@dataclass(frozen=True)
class SinkType:
    """A kind of sink: its options, ``open(values, ctx)`` (None when its options did not ask for it; raises
    a one-line error for anything fatal) and ``summary(counters)``, the human lines of its final counters."""

    name: str
    options: tuple[SinkOption, ...]
    open: Callable[[dict[str, Any], SinkContext], Sink | None]
    summary: Callable[[dict[str, Any]], list[str]] = lambda _c: []


def sink_types() -> list[SinkType]:
    """The registered sink types, in registry order."""
    out = []
    for ref in SINK_TYPES:
        module, attr = ref.split(":")
        out.append(getattr(importlib.import_module(module), attr))
    return out


class FanOut:
    """Calls every sink's ``on_window`` in order; ``close(summary)`` closes them and merges their counters."""

    def __init__(self, sinks: Sequence[Sink] = ()) -> None:
        self.sinks = list(sinks)
        self._live: Callable[[], Any] | None = None
        self._closed: dict[str, Any] | None = None

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
        for sink in self.sinks:
            sink.on_window(prediction)

    def counters(self) -> dict[str, Any]:
        """All sinks' live counters in one dict (keys are prefixed by each sink: ``mqtt_``, ``page_``)."""
        merged: dict[str, Any] = {}
        for sink in self.sinks:
            merged.update(sink.counters())
        return merged

    def close(self, summary: Any = None) -> dict[str, Any]:
        """Close every sink (once), last opened first, and merge their final counters."""
        if self._closed is None:
            merged: dict[str, Any] = {}
            for sink in reversed(self.sinks):
                merged.update(sink.close(summary))
            self._closed = merged
        return self._closed


def open_sinks(values: dict[str, Any], ctx: SinkContext, types: Sequence[SinkType] | None = None) -> FanOut:
    """Open every sink the option ``values`` (dest -> value) ask for, in registry order, as one fan-out.

    ``types``: only these sink types (default: all registered). Option dependencies (``needs``) are checked
    first; a sink that fails to open closes the ones opened before it, then the one-line error propagates.
    """
    types = sink_types() if types is None else list(types)
    for option in (o for t in types for o in t.options):
        if option.needs and values.get(option.dest) and not values.get(option.needs):
            raise HartoolError(f"{option.flag} needs --{option.needs.replace('_', '-')}")
    fan = FanOut()
    ctx.live_counters = fan.live_counters
    ctx.opened = fan.sinks
    try:
        for kind in types:
            sink = kind.open(values, ctx)
            if sink is not None:
                fan.sinks.append(sink)
    except BaseException:
        fan.close(None)
        raise
    return fan


def summary_lines(counters: dict[str, Any]) -> list[str]:
    """The human summary lines of every sink type whose counters are present."""
    return [line for kind in sink_types() for line in kind.summary(counters)]
