"""The one preprocessing function: applied to training windows and, identically, to live windows on the device."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import BundleError
from .features import FEATURES_TYPE, preprocess_features
from .standardize import standardize

PREPROCESSING_TYPE = "standardize"


def fit_preprocessing(x: np.ndarray, clip: float | None = None) -> dict[str, Any]:
    """Per-channel mean/std over training windows ``x`` of shape (N, window, C), stored in the manifest.

    Per-channel standardisation is causal (no filtering across windows), so a live stream reproduces it
    exactly; gravity stays in the signal because orientation separates SITTING, STANDING and LAYING.
    ``clip`` (sd units) bounds the standardised values: a full-int8 model has ONE input scale for all
    channels, set by the widest; gyro peaks reach 12-15 sd where acc stays within 3-5, so unclipped the
    acc channels (the gravity direction that separates the postures) get ~1.8 degree steps.
    """
    flat = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1])
    std = flat.std(axis=0)
    spec: dict[str, Any] = {
        "type": PREPROCESSING_TYPE,
        "mean": [float(v) for v in flat.mean(axis=0)],
        # A dead channel (std 0) must not turn into inf/NaN on the device.
        "std": [float(v) if v > 1e-8 else 1.0 for v in std],
    }
    if clip is not None:
        spec["clip"] = float(clip)
    return spec


def preprocess(x: np.ndarray, spec: Mapping[str, Any], out: np.ndarray | None = None) -> np.ndarray:
    """Scale raw windows (..., window, C) in manifest units into model input, float32.

    ``out`` lets the streaming loop reuse one preallocated buffer per window. A ``features`` spec
    (``--arch features``) returns standardised feature vectors (..., n_features) instead.
    """
    if spec.get("type") == FEATURES_TYPE:
        return preprocess_features(x, spec, out)
    if spec.get("type") != PREPROCESSING_TYPE:
        raise BundleError(f"unsupported preprocessing type {spec.get('type')!r} (expected {PREPROCESSING_TYPE!r})")
    out = standardize(x, spec["mean"], spec["std"], "channels", out)
    clip = spec.get("clip")
    if clip is not None:
        np.clip(out, -clip, clip, out=out)
    return out
