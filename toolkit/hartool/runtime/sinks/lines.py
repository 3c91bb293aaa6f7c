"""The default output: one human line per window on a text stream (stdout), unless ``--jsonl`` asks for JSON."""

from __future__ import annotations

from typing import Any, TextIO

from . import SinkContext, SinkType


class LinesSink:
    """``  12.80s  #3     WALKING                92.1%`` per window (`` (device)`` after a board's own prediction),
    flushed so a pipe reader sees it at once."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def on_window(self, p: Any) -> None:
        flag = (" (uncertain)" if p.uncertain else "") + (" (device)" if p.source == "device" else "")
        self.out.write(f"{p.t_s:8.2f}s  #{p.window:<5d} {p.label:<20s} {p.confidence:6.1%}{flag}\n")
        self.out.flush()

    def counters(self) -> dict[str, Any]:
        return {}  # the stream summary counts the windows

    def close(self, summary: Any = None) -> dict[str, Any]:
        return {}


def _open(values: dict[str, Any], ctx: SinkContext) -> LinesSink | None:
    return None if values.get("jsonl") else LinesSink(ctx.out)


LINES = SinkType("lines", (), _open)
