"""Re-derive a bundle's exact train/test windows from its manifest, so quantize and benchmark evaluate alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.preprocess import preprocess


def cap_windows(windows: Any, limit: int | None, seed: int) -> Any:
    """A seeded, order-preserving subset of at most ``limit`` windows (smoke tests train on few windows)."""
    if limit is None or len(windows.y) <= limit:
        return windows
    rng = np.random.default_rng(seed)
    return windows.subset(np.sort(rng.choice(len(windows.y), size=limit, replace=False)))


@dataclass(frozen=True)
class EvalSet:
    """Preprocessed test windows (what `metrics.test` was computed on) and calibration windows."""

    x_test: np.ndarray
    y_test: np.ndarray
    subject_test: np.ndarray
    x_calib: np.ndarray


def bundle_eval_set(manifest: dict[str, Any], calibration_windows: int = 300, seed: int = 0) -> EvalSet:
    """Rebuild the bundle's test split and draw seeded calibration windows from its training subjects."""
    from . import load_dataset, make_windows, split_by_subject

    training = manifest["training"]
    ds = load_dataset(manifest["dataset"]["name"])
    windows = make_windows(ds, manifest["window"], manifest["stride"],
                           include_transitions=bool(training.get("include_transitions")))
    split = split_by_subject(windows, val_fraction=training.get("val_fraction", 0.15), seed=training.get("seed", 0))
    test = cap_windows(split.test, manifest["dataset"].get("max_windows"), training.get("seed", 0))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(split.train.y), size=min(calibration_windows, len(split.train.y)), replace=False)
    spec = manifest["preprocessing"]
    return EvalSet(
        x_test=preprocess(test.x, spec),
        y_test=test.y,
        subject_test=test.subject,
        x_calib=preprocess(split.train.x[np.sort(pick)], spec),
    )
