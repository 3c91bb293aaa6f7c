"""The Pareto plot's labels: every artifact named, no two names on top of each other (compare --plot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from hartool.bench import plots  # noqa: E402

ARTIFACTS = ["tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "tflite-int16x8",
             "onnx-fp32", "onnx-dynamic", "onnx-int8"]


def _doc(shift: float) -> dict[str, Any]:
    """A crowded result: eight artifacts x two backends within a few us and 0.3 pp of each other."""
    rows = [{"status": "ok", "artifact": a, "backend": b, "accuracy": 0.962 + 0.0004 * i + shift,
             "latency_us": {"p50": 20.0 + 1.5 * i + 4 * j + shift * 1e3}, "bytes": 60_000 + 9_000 * i}
            for i, a in enumerate(ARTIFACTS) for j, b in enumerate(["litert", "onnxruntime"])]
    return {"results": rows, "baselines": []}


def test_labels_do_not_overlap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[Any] = []
    real = plots.place_labels

    def keep(ax: Any, labels: list[tuple[float, float, str]], **kw: Any) -> list[Any]:
        placed = real(ax, labels, **kw)
        drawn.append((ax, placed))
        return placed

    monkeypatch.setattr(plots, "place_labels", keep)
    out = plots.pareto_plot([("laptop", _doc(0.0)), ("pi", _doc(0.001))], tmp_path / "pareto.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (ax, placed), = drawn
    assert sorted(a.get_text() for a in placed) == sorted(ARTIFACTS * 4)
    renderer = ax.figure.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in placed]
    overlaps = [(placed[i].get_text(), placed[j].get_text()) for i in range(len(boxes))
                for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
    assert overlaps == []
