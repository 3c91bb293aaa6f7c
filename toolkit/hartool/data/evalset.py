"""Re-derive a bundle's exact train/test windows from its manifest, so quantize and benchmark evaluate alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.transform import InputTransform
from .splits import cap_windows, resolve_subjects


@dataclass(frozen=True)
class EvalSet:
    """Preprocessed test windows (what `metrics.test` was computed on), validation and calibration windows.

    ``x_val`` / ``y_val`` are what choices between artifacts are made on (never the test windows): the
    validation subjects' windows, or, for a bundle trained without validation subjects, the calibration
    windows drawn from its training subjects (``val_from`` says which).
    """

    x_test: np.ndarray
    y_test: np.ndarray
    subject_test: np.ndarray
    x_calib: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    val_from: str  # "validation subjects" | "training windows"


def _subjects_of(ds: Any, dataset: dict[str, Any], key: str) -> list[int]:
    """A split's subject ids: by name when the manifest has names (stable for csv:DIR), else the stored ids."""
    names = dataset.get(f"{key}_subject_names")
    if names is not None:
        return resolve_subjects(ds, names, f"manifest {key} subjects")
    return [int(s) for s in dataset.get(f"{key}_subjects", [])]


def bundle_eval_set(manifest: dict[str, Any], calibration_windows: int = 300, seed: int = 0) -> EvalSet:
    """Rebuild the bundle's test split and draw seeded calibration windows from its training subjects.

    The classes are the manifest's labels in their order (so a ``--labels`` subset evaluates alike); a
    bundle trained without test subjects (``--cv loso``'s final model) is evaluated on its training
    subjects' windows, as training did.
    """
    from . import load_dataset, make_windows

    training = manifest["training"]
    dataset = manifest["dataset"]
    transform = InputTransform(manifest)
    # A free-orientation model sees each recording calibrated as its stream would (core/transform.py).
    ds = transform.dataset(load_dataset(dataset["name"]))
    windows = make_windows(ds, manifest["window"], manifest["stride"], labels=manifest["labels"])
    train_ids = _subjects_of(ds, dataset, "train")
    test_ids = _subjects_of(ds, dataset, "test") or train_ids
    val_ids = _subjects_of(ds, dataset, "val")
    cap, cap_seed = dataset.get("max_windows"), training.get("seed", 0)
    train = windows.subset(np.isin(windows.subject, train_ids))
    test = cap_windows(windows.subset(np.isin(windows.subject, test_ids)), cap, cap_seed)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(train.y), size=min(calibration_windows, len(train.y)), replace=False))
    x_calib = transform.preprocess(train.x[pick])
    val = cap_windows(windows.subset(np.isin(windows.subject, val_ids)), cap, cap_seed) if val_ids else None
    if val is not None and len(val.y):
        x_val, y_val, val_from = transform.preprocess(val.x), val.y, "validation subjects"
    else:
        x_val, y_val, val_from = x_calib, train.y[pick], "training windows"
    return EvalSet(x_test=transform.preprocess(test.x), y_test=test.y, subject_test=test.subject, x_calib=x_calib,
                   x_val=x_val, y_val=y_val, val_from=val_from)
