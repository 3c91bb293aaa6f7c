"""Timeline metrics on hand-made sequences with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from hartool.core.metrics import label_changes, segment_counts, segments, timeline_report

U = -1


def test_segments_runs() -> None:
    assert segments(np.array([0, 0, 1, U, U, 1])) == [(0, 2, 0), (2, 3, 1), (3, 5, U), (5, 6, 1)]
    assert segments(np.array([], dtype=int)) == []


def test_segment_counts_known_answer() -> None:
    truth = np.array([0, 0, 0, 0, U, 1, 1, 1, 1, 1, 1])
    # Segment 0: predicted 0 for 2 of 4 windows in one run -> 50 % -> found.
    # Segment 1: six windows, predicted 1 in two runs of 2 -> no single run covers >= 50 % -> missed.
    pred = np.array([0, 0, 2, 2, 2, 1, 1, 2, 1, 1, 2])
    c = segment_counts(truth, pred)
    assert c["true_segments"] == 2 and c["found"] == 1
    # Predicted runs: [0,0] ok, [2,2,2] wrong, [1,1] ok, [2] wrong, [1,1] ok, [2] wrong -> 3 of 6.
    assert c["pred_segments"] == 6 and c["correct_pred"] == 3


def test_predicted_segments_inside_unscored_stretches_do_not_count() -> None:
    truth = np.array([0, 0, 0, U, U, U, 0, 0])
    pred = np.array([0, 0, 0, 0, 3, 0, 0, 0])
    c = segment_counts(truth, pred)
    assert c["pred_segments"] == 2 and c["correct_pred"] == 2  # the lone 3 sits in unscored windows
    assert c["true_segments"] == 2 and c["found"] == 2


def test_label_changes_truth_skips_unscored() -> None:
    truth = np.array([0, 0, U, U, 1, 1, U, 1, 2])
    assert label_changes(truth, skip_unscored=True) == 2
    assert label_changes(np.array([0, 1, 0, 0, 2])) == 3


def test_timeline_report_numbers() -> None:
    truth = np.array([0] * 10 + [U] * 2 + [1] * 10)
    perfect = np.array([0] * 11 + [1] * 11)
    flicker = perfect.copy()
    flicker[[3, 15]] = 2
    r = timeline_report([(truth, perfect), (truth, flicker)], stride_s=1.5)
    assert r["windows"] == 44 and r["scored_windows"] == 40
    assert r["window_accuracy"] == pytest.approx(38 / 40)
    # 44 windows x 1.5 s = 1.1 min; truth: 1 change per recording; prediction: 1 + 5.
    assert r["true_changes_per_min"] == pytest.approx(2 / 1.1)
    assert r["changes_per_min"] == pytest.approx(6 / 1.1)
    assert r["change_ratio"] == pytest.approx(3.0)
    # On the labelled windows only: perfect keeps its 1 change; flicker's two lone 2s sit on labelled windows.
    assert r["changes_per_min_scored"] == pytest.approx(6 / 1.1)
    noisy_gap = perfect.copy()
    noisy_gap[10] = 3  # a flip inside the unlabelled gap: seen by the user, not judged against the truth
    g = timeline_report([(truth, noisy_gap)], stride_s=1.5)
    assert g["changes_per_min"] * 22 * 1.5 / 60 == pytest.approx(2)  # 0 -> 3 -> 1 instead of 0 -> 1
    assert g["changes_per_min_scored"] * 22 * 1.5 / 60 == pytest.approx(1)
    assert g["change_ratio_scored"] == pytest.approx(1.0)
    # Recall: all 4 true segments found (the flicker leaves runs of 6 of 10 windows).
    assert r["segment_recall"] == 1.0
    # Precision: 2 + 6 predicted segments (0 2 0 1 2 1), the two lone 2s are wrong -> 6 / 8.
    assert r["segment_precision"] == pytest.approx(6 / 8)
    assert r["segment_f1"] == pytest.approx(2 * 0.75 / 1.75)


def test_window_truths_marks_mixed_and_foreign_windows() -> None:
    from hartool.core.metrics import window_truths

    labels = np.array([5] * 8 + [7] * 4 + [4] * 8 + [-1] * 4)
    # window 4, stride 2: ends 4, 6, ..., 24 -> 11 windows; ids 5 -> index 1, 4 -> index 0, 7 not a class.
    t = window_truths(labels, 4, 2, [4, 5])
    assert t.tolist() == [1, 1, 1, U, U, U, 0, 0, 0, U, U]
