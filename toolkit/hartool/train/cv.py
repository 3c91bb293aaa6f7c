"""Leave-one-subject-out cross-validation: one model per held-out subject, then the final model on everyone.

Each fold is an ordinary training run (the same recipe as ``hartool train``) with one test subject, written
to a scratch bundle that is deleted afterwards; only its scores are kept. The final bundle is trained on
every subject (no test subject) and its manifest carries the per-subject table under ``metrics.cv``.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.bundle import Bundle
from ..core.errors import DataError
from .fit import TrainOptions, TrainResult, load_training_data, train


@dataclass
class CvResult:
    """The per-subject fold scores and the final model trained on everyone."""

    folds: list[dict[str, Any]]  # {"subject", "windows", "accuracy", "macro_f1"} per held-out subject
    summary: dict[str, Any]  # {"mode", "n_folds", "accuracy_mean", "accuracy_sd", "macro_f1_mean", ...}
    final: TrainResult


def cv_summary(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1; 0 with a single fold) of accuracy and macro-F1."""
    out: dict[str, Any] = {"mode": "loso", "n_folds": len(folds)}
    for key in ("accuracy", "macro_f1"):
        values = np.asarray([f[key] for f in folds], dtype=np.float64)
        out[f"{key}_mean"] = float(values.mean()) if values.size else None
        out[f"{key}_sd"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return out


def loso_subjects(opts: TrainOptions) -> list[str]:
    """The subjects of the folds (names as written), after the same checks a normal split makes."""
    data = load_training_data(dataclasses.replace(opts, test_subjects=(), val_subjects=None,
                                                  orientation=opts.orientation or "fixed"))
    return [data.dataset.subject_name(s) for s in data.dataset.in_name_order(data.split.train_subjects)]


def train_loso(opts: TrainOptions, on_fold: Callable[[dict[str, Any]], None] | None = None) -> CvResult:
    """Leave each subject out in turn, then train ``opts.out`` on everyone and record the table in its manifest."""
    if opts.test_subjects is not None or opts.val_subjects is not None:
        raise DataError("--cv loso chooses the test subject of each fold itself; drop --test-subjects/--val-subjects")
    subjects = loso_subjects(opts)
    folds: list[dict[str, Any]] = []
    scratch = Path(tempfile.mkdtemp(prefix=".loso-", dir=Path(opts.out).parent if Path(opts.out).parent.exists()
                                    else None))
    try:
        for i, name in enumerate(subjects):
            fold_opts = dataclasses.replace(opts, test_subjects=(name,), out=scratch / f"fold{i:03d}",
                                            tensorboard=None)
            result = train(fold_opts)
            test = result.metrics["test"]
            fold = {"subject": name, "windows": result.windows["test"], "accuracy": float(test["accuracy"]),
                    "macro_f1": float(test["macro_f1"])}
            folds.append(fold)
            if on_fold is not None:
                on_fold(fold)
            shutil.rmtree(fold_opts.out, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = cv_summary(folds)
    final = train(dataclasses.replace(opts, test_subjects=()))
    bundle = Bundle.load(Path(opts.out))
    bundle.manifest["metrics"]["cv"] = {**summary, "folds": folds}
    bundle.save()
    final.metrics["cv"] = bundle.manifest["metrics"]["cv"]
    return CvResult(folds=folds, summary=summary, final=final)
