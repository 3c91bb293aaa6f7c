"""``hartool data info``: seconds and windows per subject x label, the default split, and too-little-data warnings.

Thresholds (windows are counted at the window/stride asked for, 2.56 s / 1.28 s by default):

- a class needs at least ``MIN_TRAIN_WINDOWS`` windows over all subjects to be learnt at all;
- a class recorded by fewer than ``MIN_SUBJECTS_PER_CLASS`` subjects cannot be trained on one person and
  tested on another;
- a subject x class cell with fewer than ``MIN_TEST_WINDOWS`` windows (but some recording) gives a test
  score that is noise when that subject is tested;
- labelled time that yields no window at all (every run shorter than one window) is wasted;
- a dataset needs two subjects with windows (one to train on, one to test on);
- a recording whose magnitudes contradict its units (``# units:`` of a CSV; m/s² stored as g, ...) is
  named (:func:`hartool.core.unitcheck.stored_unit_doubts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hartool.core.errors import DataError
from hartool.core.unitcheck import stored_unit_doubts
from hartool.data.recordings import Dataset
from hartool.data.windowing import describe, proposed_window, window_advice
from hartool.data.windows import Windows, dataset_info

# Below this many windows per class (median over classes), training takes the small-data recipe.
SMALL_DATA_WINDOWS_PER_CLASS = 400
# Below this many, `--arch auto` most likely picks the feature model: a CNN has too few examples to learn its own
# features (RESULTS.md "Many datasets": 4 and 10 windows per class went to features; 51 (BasicMotions) tied,
# 393 (the watch set) and HAPT's thousands went to the CNN). Below train.auto's KNN_CANDIDATE_WINDOWS_PER_CLASS
# auto also scores knn, which won on PickupGestureWiimoteZ: `data info` says so beside "features".
FEATURES_LIKELY_WINDOWS_PER_CLASS = 50
# Minutes of each activity per person that the recommendation aims at (HAPT has about 1-2 per cell and 30 people).
TARGET_MINUTES_PER_CELL = 2.0
MIN_TRAIN_WINDOWS = 30
MIN_SUBJECTS_PER_CLASS = 2
MIN_TEST_WINDOWS = 5
THRESHOLDS = {"min_train_windows_per_class": MIN_TRAIN_WINDOWS,
              "min_subjects_per_class": MIN_SUBJECTS_PER_CLASS,
              "min_test_windows_per_subject_class": MIN_TEST_WINDOWS}


def _seconds(ds: Dataset, subject: int, label_ids: Sequence[int]) -> list[float]:
    """Labelled seconds of ``subject`` for each id in ``label_ids``."""
    counts = {int(i): 0 for i in label_ids}
    for rec in ds.recordings:
        if rec.subject != subject:
            continue
        ids, n = np.unique(rec.labels, return_counts=True)
        for i, c in zip(ids.tolist(), n.tolist(), strict=True):
            if i in counts:
                counts[i] += c
    return [counts[int(i)] / ds.sample_rate_hz for i in label_ids]


def subject_label_table(ds: Dataset, w: Windows) -> list[dict[str, Any]]:
    """One row per subject (dataset order of ids): name, id, and per class seconds and windows."""
    rows = []
    for sid in ds.in_name_order():
        secs = _seconds(ds, sid, w.label_ids)
        wins = np.bincount(w.y[w.subject == sid], minlength=len(w.labels))
        cells = {name: {"seconds": round(s, 2), "windows": int(n)}
                 for name, s, n in zip(w.labels, secs, wins.tolist(), strict=True)}
        rows.append({"subject": ds.subject_name(sid), "id": int(sid), "labels": cells,
                     "seconds": round(float(sum(secs)), 2), "windows": int(wins.sum())})
    return rows


def data_warnings(ds: Dataset, w: Windows, rows: list[dict[str, Any]]) -> list[str]:
    """Human sentences, one per problem, in the order a user should fix them."""
    out = [f"{rec.session}: {doubt.contradiction()}" for rec in ds.recordings
           for doubt in stored_unit_doubts(rec.values[:, :3], rec.values[:, 3:])]
    with_windows = [r["subject"] for r in rows if r["windows"] > 0]
    if len(with_windows) < 2:
        out.append(f"only {len(with_windows)} subject(s) with windows ({', '.join(with_windows) or 'none'}): "
                   "training needs at least two (one to train on, one to test on)")
    window_s = w.x.shape[1] / ds.sample_rate_hz
    for name in w.labels:
        total = sum(r["labels"][name]["windows"] for r in rows)
        who = [r["subject"] for r in rows if r["labels"][name]["windows"] > 0]
        if total < MIN_TRAIN_WINDOWS:
            out.append(f"{name}: {total} windows in all; training needs at least {MIN_TRAIN_WINDOWS}")
        if 0 < len(who) < MIN_SUBJECTS_PER_CLASS:
            out.append(f"{name}: recorded by {who[0]} only; it cannot be trained on one person and tested on another")
    for r in rows:
        for name, cell in r["labels"].items():
            if cell["seconds"] > 0 and cell["windows"] == 0:
                out.append(f"{r['subject']} / {name}: {cell['seconds']:.1f} s but no window (runs shorter than "
                           f"one window of {window_s:.2f} s)")
            elif 0 < cell["windows"] < MIN_TEST_WINDOWS:
                out.append(f"{r['subject']} / {name}: {cell['windows']} windows; a test score over fewer than "
                           f"{MIN_TEST_WINDOWS} is noise")
    return out


def default_split(ds: Dataset, w: Windows, seed: int = 0) -> dict[str, Any]:
    """The split `hartool train` would choose with no subject options, or the error it would stop with."""
    from hartool.data.splits import choose_split

    try:
        split, test_from, val_from = choose_split(ds, w, seed=seed)
    except DataError as exc:
        return {"error": str(exc)}
    return {
        "test": [ds.subject_name(s) for s in split.test_subjects], "test_from": test_from,
        "val": [ds.subject_name(s) for s in split.val_subjects], "val_from": val_from,
        "train": [ds.subject_name(s) for s in split.train_subjects],
    }


def _median_class(w: Windows) -> float:
    counts = list(w.class_counts().values())
    return float(np.median(counts)) if counts else 0.0


def is_small_data(w: Windows) -> bool:
    """Whether the median class has fewer than ``SMALL_DATA_WINDOWS_PER_CLASS`` windows."""
    return _median_class(w) < SMALL_DATA_WINDOWS_PER_CLASS


def likely_arch(w: Windows) -> str:
    """The arch ``--arch auto`` most likely picks (it decides by cross-validation; this is only the expectation)."""
    return "features" if _median_class(w) < FEATURES_LIKELY_WINDOWS_PER_CLASS else "cnn"


def more_data_advice(rows: list[dict[str, Any]], classes: list[str]) -> str:
    """Where more recording would matter most: the activity furthest below ``TARGET_MINUTES_PER_CELL`` per person."""
    if not rows or not classes:
        return ""
    minutes = {c: [r["labels"][c]["seconds"] / 60.0 for r in rows] for c in classes}
    deficit = {c: sum(max(0.0, TARGET_MINUTES_PER_CELL - m) for m in ms) for c, ms in minutes.items()}
    worst = max(classes, key=lambda c: (deficit[c], -sum(minutes[c])))
    if deficit[worst] <= 0:
        return (f"every person has at least {TARGET_MINUTES_PER_CELL:g} min of every activity: more people would "
                "matter more than more minutes")
    short = sorted(((m, r["subject"]) for m, r in zip(minutes[worst], rows, strict=True)
                    if m < TARGET_MINUTES_PER_CELL))
    who = ", ".join(f"{name} {m:.1f} min" for m, name in short[:4]) + (" ..." if len(short) > 4 else "")
    return (f"{worst} needs it most: {sum(minutes[worst]):.1f} min in all; {deficit[worst]:.1f} more minutes would "
            f"bring every person to {TARGET_MINUTES_PER_CELL:g} min ({who})")


def recommendation(ds: Dataset, w: Windows, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The window to use, the arch ``auto`` would likely pick, and where more minutes would matter most."""
    window = int(w.x.shape[1])
    better = proposed_window(ds, w.label_ids, window)
    chosen = better if better is not None else window
    return {"window": chosen, "window_s": round(chosen / ds.sample_rate_hz, 3),
            "window_text": describe(chosen, ds.sample_rate_hz), "window_changed": better is not None,
            "arch": likely_arch(w), "small_data": is_small_data(w), "more_data": more_data_advice(rows, w.labels)}


def data_report(ds: Dataset, w: Windows, seed: int = 0) -> dict[str, Any]:
    """Everything ``hartool data info`` shows: the summary, the subject x label table, split, warnings and advice."""
    rows = subject_label_table(ds, w)
    split = default_split(ds, w, seed)
    warnings = data_warnings(ds, w, rows)
    advice = window_advice(ds, w.label_ids, int(w.x.shape[1]))
    if advice:
        warnings.append(advice)
    if "error" in split:
        warnings.append(f"training would stop: {split['error']}")
    return {**dataset_info(ds, w), "subject_names": [ds.subject_name(s) for s in ds.in_name_order()],
            "per_subject": rows, "default_split": split, "thresholds": dict(THRESHOLDS), "warnings": warnings,
            "recommendation": recommendation(ds, w, rows)}
