"""``hartool data info``: seconds and windows per subject x label, the default split, and too-little-data warnings.

Thresholds (windows are counted at the window/stride asked for, 128/64 by default):

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
from hartool.data.windows import Windows, dataset_info

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


def data_report(ds: Dataset, w: Windows, seed: int = 0) -> dict[str, Any]:
    """Everything ``hartool data info`` shows: the summary, the subject x label table, split and warnings."""
    rows = subject_label_table(ds, w)
    split = default_split(ds, w, seed)
    warnings = data_warnings(ds, w, rows)
    if "error" in split:
        warnings.append(f"training would stop: {split['error']}")
    return {**dataset_info(ds, w), "subject_names": [ds.subject_name(s) for s in ds.in_name_order()],
            "per_subject": rows, "default_split": split, "thresholds": dict(THRESHOLDS), "warnings": warnings}
