"""Per-column standardisation against a manifest's stored mean and std, shared by both preprocessing kinds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import BundleError


def standardize(values: np.ndarray, mean: Sequence[float], std: Sequence[float], what: str,
                out: np.ndarray | None = None) -> np.ndarray:
    """``(values - mean) / std`` over the last axis as float32, into ``out`` when given (the stream reuses one buffer).

    ``what`` names the columns in the error a bundle/input mismatch raises ("channels", "features").
    """
    mean_a = np.asarray(mean, dtype=np.float32)
    std_a = np.asarray(std, dtype=np.float32)
    if values.shape[-1] != mean_a.shape[0]:
        raise BundleError(f"input has {values.shape[-1]} {what}, the bundle's preprocessing expects {mean_a.shape[0]}")
    if out is None:
        out = np.empty(values.shape, dtype=np.float32)
    np.subtract(values, mean_a, out=out, casting="unsafe")
    np.divide(out, std_a, out=out)
    return out
