"""Temporal smoothing of class probabilities: a moving average over the last K windows."""

from __future__ import annotations

import numpy as np


class ProbabilitySmoother:
    """Mean of the last ``k`` probability vectors (k=1 is a pass-through); damps single-window flicker."""

    def __init__(self, k: int, n_classes: int) -> None:
        if k < 1:
            raise ValueError("smoothing window must be >= 1")
        self.k = k
        self._hist = np.zeros((k, n_classes), dtype=np.float32)
        self._count = 0

    def update(self, probs: np.ndarray) -> np.ndarray:
        self._hist[self._count % self.k] = probs
        self._count += 1
        return self._hist[: min(self._count, self.k)].mean(axis=0)

    def reset(self) -> None:
        self._count = 0
