"""``--jsonl``: one JSON object per window on stdout (``WindowPrediction.to_json``), nothing else there."""

from __future__ import annotations

import json
from typing import Any, TextIO

from . import SinkContext, SinkOption, SinkType


class JsonlSink:
    """Writes each window as one JSON line and flushes, so a pipe reader sees each window as it happens."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def on_window(self, prediction: Any) -> None:
        self.out.write(json.dumps(prediction.to_json()) + "\n")
        self.out.flush()

    def counters(self) -> dict[str, Any]:
        return {}  # the stream summary counts the windows

    def close(self, summary: Any = None) -> dict[str, Any]:
        return {}


def _open(values: dict[str, Any], ctx: SinkContext) -> JsonlSink | None:
    return JsonlSink(ctx.out) if values.get("jsonl") else None


JSONL = SinkType("jsonl", (SinkOption("--jsonl", "One JSON object per window on stdout, nothing else.", "flag"),),
                 _open)
