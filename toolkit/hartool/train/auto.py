"""``--arch auto``: cross-validate candidate archs on the training subjects only, then train the best one.

The test subjects are left out of every fold (never seen, never scored): folds hold out groups of the
training (and validation) subjects, so the choice is made on people the final model's test set does not
contain. Each fold is an ordinary training run written to a scratch bundle that is deleted afterwards; the
table goes to the final bundle's manifest under ``training.auto``.

Budget: a fold costs a full training run. With at most ``SMALL_FOLDS`` folds when training has at most
``FULL_CV_MAX_WINDOWS`` windows and, above (HAPT: 24,000 at the training stride), ``LARGE_FOLDS`` folds of
``LARGE_EPOCH_SHARE`` of the usual epochs, auto costs about two ordinary trainings (both archs, every fold) on
top of the final one on large data.
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
from ..data.info import likely_arch
from .fit import DEFAULT_EPOCHS, TrainOptions, TrainResult, load_training_data, train, with_lengths

# Candidates in order of preference on a tie: the CNN quantizes to full int8 and sees the raw signal.
CANDIDATES = ("cnn", "features")
# knn joins on small data only: under this many training windows in the median class (at the evaluation stride,
# so independent examples, not shifted copies) a network has little to learn its features from, and a template
# method is the textbook tool (the UCR/UEA archives' 1-NN baselines). Above it knn's templates are a subset (the
# size budget) and its cost per window grows with them, while the networks have enough examples: HAPT (1,000+
# per class) and the watch set (393) keep the two-way choice; BasicMotions (51) and the Wiimote gestures (4)
# get knn. Decided from the data's size, before any fold is scored.
KNN_CANDIDATE_WINDOWS_PER_CLASS = 100
PICK_RULE = ("the first candidate unless another's mean per-fold gain over it exceeds the standard error of "
             "those gains")
SMALL_FOLDS = 5
LARGE_FOLDS = 3
LARGE_EPOCH_SHARE = 1 / 3
# Above this many (dense) training windows a fold run costs minutes on 2 cores: fewer folds, fewer epochs.
# HAPT has 24,000, the 81-minute watch set 18,000, BasicMotions 1,000.
FULL_CV_MAX_WINDOWS = 8000
# Held-out windows each arch must be scored on before two archs' means are compared. One pass of k folds scores
# every pool window once; when that is fewer, one window is several pp of a fold (50 one-window series in 5
# folds: 10 pp) and which series share a fold decides the pick. Then the k folds are drawn again on new seeded
# partitions until this many windows are scored (binomial standard error <= 4 pp), at most MAX_CV_PASSES
# passes; every pass is an ordinary set of fold runs, so the cost grows only where a run costs seconds.
MIN_CV_WINDOWS = 150
MAX_CV_PASSES = 3


@dataclass
class AutoResult:
    """The cross-validation table, the pick and the final model trained with it."""

    table: list[dict[str, Any]]  # {"arch", "folds", "accuracy_mean", "accuracy_sd", "macro_f1_mean"} per candidate
    picked: str
    budget: dict[str, Any]
    final: TrainResult


def candidates(train: Any) -> tuple[str, ...]:
    """The archs auto cross-validates for these training windows (a :class:`hartool.data.windows.Windows` at the
    evaluation stride): :data:`CANDIDATES`, plus knn when the median class has fewer than
    :data:`KNN_CANDIDATE_WINDOWS_PER_CLASS` windows."""
    counts = [c for c in train.class_counts().values() if c > 0]
    small = bool(counts) and float(np.median(counts)) < KNN_CANDIDATE_WINDOWS_PER_CLASS
    return (*CANDIDATES, "knn") if small else CANDIDATES


def subject_folds(names: list[str], k: int, seed: int) -> list[list[str]]:
    """``names`` shuffled (seeded) into ``k`` groups of near-equal size."""
    order = np.random.default_rng(seed).permutation(len(names))
    return [sorted(names[i] for i in order[j::k]) for j in range(k)]


def auto_budget(opts: TrainOptions, data: Any, archs: tuple[str, ...] = CANDIDATES) -> dict[str, Any]:
    """Folds and epochs per fold run: full runs on small data, fewer folds and epochs on large data."""
    full = len(data.train.y) <= FULL_CV_MAX_WINDOWS
    pool = len(data.split.train_subjects) + len(data.split.val_subjects)
    folds = min(SMALL_FOLDS if full else LARGE_FOLDS, pool)
    scored = len(data.split.train.y) + len(data.split.val.y)  # every pool window, at the evaluation stride
    # New partitions exist only when some fold holds more than one subject.
    passes = 1 if pool <= folds else min(MAX_CV_PASSES, max(1, int(np.ceil(MIN_CV_WINDOWS / max(scored, 1)))))
    epochs = {a: opts.epochs if opts.epochs is not None or full
              else max(1, int(round(DEFAULT_EPOCHS[a] * LARGE_EPOCH_SHARE))) for a in archs}
    repeat = (f"; {passes} passes of {folds} folds on differently seeded partitions: one pass scores only "
              f"{scored} windows (< {MIN_CV_WINDOWS})" if passes > 1 else "")
    return {"folds": folds, "passes": passes, "epochs": epochs, "full_cv": full,
            "why": f"full runs ({len(data.train.y):,} training windows){repeat}" if full else
                   f"{folds} folds of {LARGE_EPOCH_SHARE:.0%} of the usual epochs ({len(data.train.y):,} training "
                   f"windows: a full CV would take {SMALL_FOLDS}x a training run per arch)"}


def _fold_score(opts: TrainOptions, arch: str, fold: list[str], excluded: tuple[str, ...], epochs: int | None,
                out: Path) -> dict[str, Any]:
    fold_opts = dataclasses.replace(opts, arch=arch, test_subjects=tuple(fold), val_subjects=None,
                                    exclude_subjects=excluded, out=out, epochs=epochs, tensorboard=None)
    result = train(fold_opts)
    test = result.metrics["test"]
    return {"arch": arch, "subjects": fold, "windows": result.windows["test"], "accuracy": float(test["accuracy"]),
            "macro_f1": float(test["macro_f1"])}


def _names(ds: Any, ids: list[int]) -> list[str]:
    return [ds.subject_name(s) for s in ids]


def _table(scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for arch in dict.fromkeys(s["arch"] for s in scores):
        acc = np.asarray([s["accuracy"] for s in scores if s["arch"] == arch])
        f1 = np.asarray([s["macro_f1"] for s in scores if s["arch"] == arch])
        if acc.size:
            rows.append({"arch": arch, "folds": int(acc.size), "accuracy_mean": float(acc.mean()),
                         "accuracy_sd": float(acc.std(ddof=1)) if acc.size > 1 else 0.0,
                         "macro_f1_mean": float(f1.mean())})
    return rows


def pick(scores: list[dict[str, Any]]) -> str:
    """The first candidate, unless another beats it clearly: by more than the standard error of their paired
    per-fold differences (and then the clearest such winner).

    Folds differ more from each other (which people are held out) than the archs differ on one fold; a mean
    over a few folds alone would follow that noise. Pairing by fold removes the people effect, and the
    first candidate (the CNN: full int8, raw signal) keeps its place unless the data says otherwise.
    """
    archs = list(dict.fromkeys(s["arch"] for s in scores))  # in the order they were scored: the first is the base
    by_arch = {a: np.asarray([s["accuracy"] for s in scores if s["arch"] == a]) for a in archs}
    base = archs[0]
    best, best_margin = base, 0.0
    for arch in archs[1:]:
        diff = by_arch[arch] - by_arch[base]
        if diff.size == 0 or diff.size != by_arch[base].size:
            continue
        se = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
        margin = float(diff.mean()) - se
        if margin > best_margin:
            best, best_margin = arch, margin
    return best


def train_auto(opts: TrainOptions, on_fold: Callable[[dict[str, Any]], None] | None = None) -> AutoResult:
    """Cross-validate the :func:`candidates` on the training subjects, train the best on the usual split."""
    from ..data import load_dataset

    ds = load_dataset(opts.dataset)
    opts = with_lengths(opts, ds.sample_rate_hz)
    # Only the split and the class counts are read here; the orientation does not change them.
    data = load_training_data(dataclasses.replace(opts, arch="cnn", orientation=opts.orientation or "fixed"), ds)
    excluded = tuple(_names(data.dataset, data.split.test_subjects))
    pool = _names(data.dataset, data.split.train_subjects) + _names(data.dataset, data.split.val_subjects)
    archs = candidates(data.split.train)
    budget = auto_budget(opts, data, archs)
    scores: list[dict[str, Any]] = []
    scratch = Path(tempfile.mkdtemp(prefix=".auto-", dir=Path(opts.out).parent if Path(opts.out).parent.exists()
                                    else None))
    try:
        if budget["folds"] >= 2:
            folds = [f for p in range(budget["passes"]) for f in subject_folds(pool, budget["folds"], opts.seed + p)]
            for i, fold in enumerate(folds):
                for arch in archs:
                    score = _fold_score(opts, arch, fold, excluded, budget["epochs"][arch], scratch / f"{arch}{i}")
                    scores.append(score)
                    if on_fold is not None:
                        on_fold(score)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table = _table(scores)
    # Too few subjects to cross-validate: the expectation from the data's size.
    picked = pick(scores) if table else likely_arch(data.split.train)
    final = train(dataclasses.replace(opts, arch=picked))
    bundle = Bundle.load(Path(opts.out))
    section = {"candidates": list(archs), "picked": picked, "rule": PICK_RULE, "table": table, "folds": scores,
               "candidate_rule": f"knn when the median class has fewer than {KNN_CANDIDATE_WINDOWS_PER_CLASS} "
                                 "training windows",
               "budget": budget, "cv_subjects": pool, "excluded_test_subjects": list(excluded)}
    bundle.manifest["training"]["auto"] = section
    bundle.save()
    final.metrics["auto"] = section
    return AutoResult(table=table, picked=picked, budget=budget, final=final)
