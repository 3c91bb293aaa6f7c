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


# Label positions tried around each point, nearest first (offsets in points): a ring of 8 directions per radius.
_RADII = (5.0, 12.0, 20.0, 30.0, 42.0, 56.0, 72.0)
_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))


def place_labels(ax: Any, labels: list[tuple[float, float, str]], fontsize: float = 7.0) -> list[Any]:
    """Annotate each (x, y, text) where its box overlaps no other label and stays inside the axes.

    Greedy, nearest free spot first; a label moved away from its point gets a thin leader line. Crowded
    points (several artifacts within a few percent of each other's latency and accuracy) are the normal
    case here, so the fixed top-right offset used before stacked them into an unreadable block.
    """
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    legend = ax.get_legend()
    taken: list[Any] = [legend.get_window_extent(renderer)] if legend is not None else []
    placed = []
    for x, y, text in sorted(labels, key=lambda p: (p[0], -p[1])):
        ann = None
        for radius in _RADII:
            for dx, dy in _DIRECTIONS:
                ann = ax.annotate(
                    text, (x, y), textcoords="offset points", xytext=(dx * radius, dy * radius), fontsize=fontsize,
                    ha="left" if dx > 0 else "right" if dx < 0 else "center",
                    va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                    arrowprops=None if radius <= _RADII[0] else {"arrowstyle": "-", "lw": 0.4, "color": "grey"})
                box = ann.get_window_extent(renderer)
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                if inside and not any(box.overlaps(other) for other in taken):
                    taken.append(box)
                    break
                ann.remove()
                ann = None
            if ann is not None:
                break
        if ann is None:  # no free spot within reach: keep the nearest one rather than drop the name
            ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=fontsize)
            taken.append(ann.get_window_extent(renderer))
        placed.append(ann)
    return placed


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
    labels: list[tuple[float, float, str]] = []
    for label, row in rows:
        groups.setdefault(f"{label}: {row['backend']}" if by_file else row["backend"], []).append(row)
    for name, members in groups.items():
        xs = [r["latency_us"][statistic] for r in members]
        ys = [100.0 * r["accuracy"] for r in members]
        sizes = [max(MIN_MARKER_AREA, MAX_MARKER_AREA * float(r.get("bytes") or 0) / biggest)
                 for r in members]
        ax.scatter(xs, ys, s=sizes, alpha=0.6, label=name, edgecolors="black", linewidths=0.5)
        labels += [(x, y, r["artifact"]) for x, y, r in zip(xs, ys, members, strict=True)]
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
    # Labels go on last, once the axes' size and limits are final: their boxes are measured in pixels.
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    place_labels(ax, labels)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())
