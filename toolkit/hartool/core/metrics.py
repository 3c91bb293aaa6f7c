"""Classification metrics in numpy: accuracy, macro-F1, per-class precision/recall, confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """JSON-able report with fractions in 0..1, as stored under ``metrics.test`` in the manifest."""
    cm = confusion_matrix(y_true, y_pred, len(labels))
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    # A class never predicted (or absent) gets precision/recall 0 rather than NaN, so JSON stays valid.
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    n = int(cm.sum())
    return {
        "n": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
        "confusion": cm.tolist(),
    }


def format_confusion(cm: list[list[int]], labels: list[str]) -> str:
    """Fixed-width terminal table of a confusion matrix (rows true, columns predicted)."""
    short = [name[:10] for name in labels]
    width = max(6, *(len(s) for s in short))
    lines = [" " * (width + 1) + " ".join(s.rjust(width) for s in short)]
    for name, row in zip(short, cm, strict=True):
        lines.append(name.rjust(width) + " " + " ".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


# --- Timelines: a label per window, judged as the sequence of activities a person sees -----------------
#
# A truth sequence holds a class index per window, or UNSCORED (-1) where the window is not one labelled
# activity (a postural transition, an unlabelled stretch, a window spanning two activities).

UNSCORED = -1


def segments(seq: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal values as ``(start, end, value)`` with ``end`` exclusive (UNSCORED runs included)."""
    seq = np.asarray(seq)
    if seq.size == 0:
        return []
    cuts = np.flatnonzero(seq[1:] != seq[:-1]) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [seq.size]])
    return [(int(s), int(e), int(seq[s])) for s, e in zip(starts, ends, strict=True)]


def _covered(runs: list[tuple[int, int, int]], other: np.ndarray) -> int:
    """How many of ``runs`` are covered >= 50 % by ONE run of ``other`` carrying the same value."""
    hits = 0
    for start, end, value in runs:
        best = max((e - s for s, e, v in segments(other[start:end]) if v == value), default=0)
        hits += int(2 * best >= end - start)
    return hits


def segment_counts(truth: np.ndarray, pred: np.ndarray) -> dict[str, int]:
    """Counts behind segment precision/recall for one recording (see :func:`timeline_report`)."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.shape != pred.shape:
        raise ValueError(f"truth has {truth.shape} windows, prediction {pred.shape}")
    true_runs = [r for r in segments(truth) if r[2] != UNSCORED]
    scored = truth != UNSCORED
    # A predicted segment lying wholly in unscored windows has nothing to be checked against.
    pred_runs = [r for r in segments(pred) if scored[r[0] : r[1]].any()]
    return {"true_segments": len(true_runs), "found": _covered(true_runs, pred),
            "pred_segments": len(pred_runs), "correct_pred": _covered(pred_runs, truth)}


def label_changes(seq: np.ndarray, skip_unscored: bool = False) -> int:
    """Changes between consecutive windows; with ``skip_unscored``, between consecutive scored activities.

    The truth's rate is counted over labelled activities (STANDING -> transition -> SITTING is one change,
    STANDING -> unlabelled -> STANDING none); a prediction's rate counts every flip the user sees.
    """
    seq = np.asarray(seq)
    if skip_unscored:
        seq = seq[seq != UNSCORED]
    return int((seq[1:] != seq[:-1]).sum()) if seq.size > 1 else 0


def timeline_report(pairs: list[tuple[np.ndarray, np.ndarray]], stride_s: float) -> dict[str, Any]:
    """Window accuracy, segment F1 and label changes per minute over recordings given as (truth, pred) pairs.

    - window accuracy: over scored windows only;
    - segment recall: a true segment (maximal run of one activity) is found when one predicted segment
      (maximal run of one predicted label) of the same label covers >= 50 % of its windows; precision
      symmetrically: a predicted segment is correct when one true segment of the same label covers >= 50 %
      of its windows (predicted segments wholly inside unscored windows are not counted); F1 of the two,
      over all recordings' segments together;
    - changes per minute, per minute of stream time (windows x stride): the truth's changes over labelled
      activities; the prediction's flips over all windows (``changes_per_min``, what a user sees) and over
      the same labelled windows the truth is counted on (``changes_per_min_scored``: the unlabelled
      stretches between activities hold real pauses and turns nobody labelled, so flips there cannot be
      judged against the truth).
    """
    totals = {"true_segments": 0, "found": 0, "pred_segments": 0, "correct_pred": 0}
    correct = scored = pred_changes = pred_changes_scored = true_changes = windows = 0
    for truth, pred in pairs:
        truth, pred = np.asarray(truth), np.asarray(pred)
        for key, value in segment_counts(truth, pred).items():
            totals[key] += value
        mask = truth != UNSCORED
        correct += int((truth[mask] == pred[mask]).sum())
        scored += int(mask.sum())
        pred_changes += label_changes(pred)
        pred_changes_scored += label_changes(pred[mask])
        true_changes += label_changes(truth, skip_unscored=True)
        windows += int(truth.size)
    recall = totals["found"] / totals["true_segments"] if totals["true_segments"] else 0.0
    precision = totals["correct_pred"] / totals["pred_segments"] if totals["pred_segments"] else 0.0
    minutes = windows * stride_s / 60.0
    pred_rate = pred_changes / minutes if minutes else 0.0
    scored_rate = pred_changes_scored / minutes if minutes else 0.0
    true_rate = true_changes / minutes if minutes else 0.0
    return {
        "windows": windows, "scored_windows": scored,
        "window_accuracy": correct / scored if scored else 0.0,
        "segment_precision": precision, "segment_recall": recall,
        "segment_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        **totals, "minutes": minutes,
        "changes_per_min": pred_rate, "true_changes_per_min": true_rate,
        "change_ratio": pred_rate / true_rate if true_rate else None,
        "changes_per_min_scored": scored_rate,
        "change_ratio_scored": scored_rate / true_rate if true_rate else None,
    }


def window_truths(labels: np.ndarray, window: int, stride: int, label_ids: list[int]) -> np.ndarray:
    """Truth index per streamed window (ends at window, window + stride, ...), UNSCORED where mixed/unknown.

    A window is scored only when all its samples carry one of the model's ``label_ids``; it then gets that
    label's index in ``label_ids`` (the bundle's class order).
    """
    labels = np.asarray(labels)
    if labels.size < window:
        return np.empty(0, dtype=np.int64)
    view = np.lib.stride_tricks.sliding_window_view(labels, window)[::stride]
    first = view[:, 0]
    pure = (view == first[:, None]).all(axis=1)
    lookup = {int(lab): i for i, lab in enumerate(label_ids)}
    out = np.array([lookup.get(int(v), UNSCORED) for v in first], dtype=np.int64)
    out[~pure] = UNSCORED
    return out
