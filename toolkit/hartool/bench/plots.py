"""Latency-vs-accuracy plot (marker area = bytes) with each file's Pareto front; matplotlib loaded lazily."""

from __future__ import annotations

import importlib.util
import io
import os
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_bytes
from ..core.errors import HartoolError
from .schema import all_rows

MAX_MARKER_AREA = 900.0
MIN_MARKER_AREA = 30.0


def require_matplotlib() -> None:
    """Fail before minutes of benchmarking when --plot cannot be honoured (e.g. a Pi without matplotlib)."""
    if importlib.util.find_spec("matplotlib") is None:
        raise HartoolError("--plot needs matplotlib, which is not installed (pip install matplotlib)")


def _points(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in all_rows(doc) if r["status"] == "ok" and r.get("accuracy") is not None]


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(latency, accuracy) points no other point beats on both: faster-and-at-least-as-accurate."""
    front: list[tuple[float, float]] = []
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((lat, acc))
    return front


def pareto_plot(series: list[tuple[str, dict[str, Any]]], path: str | os.PathLike[str],
                statistic: str = "p50") -> Path:
    """Write a PNG: x = latency ``statistic`` per call (log), y = accuracy, marker area ∝ bytes.

    ``series`` is [(label, result document)]; one file is coloured by backend, several by file.
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [(label, row) for label, doc in series for row in _points(doc)]
    if not rows:
        raise HartoolError("nothing to plot: no measured row has an accuracy")
    biggest = max(float(r.get("bytes") or 0) for _, r in rows) or 1.0
    fig = Figure(figsize=(9, 6), dpi=110)
    FigureCanvasAgg(fig)  # Agg canvas, no pyplot: no GUI backend and no global state
    ax = fig.add_subplot()
    by_file = len(series) > 1
    groups: dict[str, list[dict[str, Any]]] = {}
    for label, row in rows:
        groups.setdefault(f"{label}: {row['backend']}" if by_file else row["backend"], []).append(row)
    for name, members in groups.items():
        xs = [r["latency_us"][statistic] for r in members]
        ys = [100.0 * r["accuracy"] for r in members]
        sizes = [max(MIN_MARKER_AREA, MAX_MARKER_AREA * float(r.get("bytes") or 0) / biggest)
                 for r in members]
        ax.scatter(xs, ys, s=sizes, alpha=0.6, label=name, edgecolors="black", linewidths=0.5)
        for x, y, r in zip(xs, ys, members, strict=True):
            ax.annotate(r["artifact"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for label, doc in series:
        front = pareto_front([(r["latency_us"][statistic], 100.0 * r["accuracy"]) for r in _points(doc)])
        if len(front) > 1:
            ax.plot(*zip(*front, strict=True), linestyle="--", linewidth=1, color="grey",
                    drawstyle="steps-post", label=f"{label} Pareto front" if by_file else "Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel(f"latency {statistic} per call (µs, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Latency vs accuracy (marker area ∝ model bytes)")
    ax.grid(True, which="both", alpha=0.3)
    legend = ax.legend(fontsize=8, loc="best")
    # Legend markers at one size: in the plot, size means bytes; in the legend it would mean nothing.
    for handle in getattr(legend, "legend_handles", None) or getattr(legend, "legendHandles", []):
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([40.0])
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())
