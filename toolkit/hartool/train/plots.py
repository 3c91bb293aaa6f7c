"""Training plots: the confusion matrix as a PNG in the bundle."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_write_bytes


def save_confusion_png(cm: list[list[int]], labels: list[str], path: Path, title: str = "") -> Path:
    """Render a row-normalised confusion matrix with counts and write it atomically."""
    import matplotlib

    matplotlib.use("Agg")  # headless: a Pi or CI has no display
    import matplotlib.pyplot as plt

    counts = np.asarray(cm, dtype=np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if frac[i, j] > 0.5 else "black")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
