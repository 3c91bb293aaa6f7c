"""Windowing and subject splits: exact HAPT counts, no window across a label change, no subject leakage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hartool.core.errors import DataError
from hartool.data import (
    UCI_HAR_TEST_SUBJECTS,
    Dataset,
    Recording,
    Windows,
    dataset_info,
    make_windows,
    recording_for_subject,
    split_by_subject,
)
from hartool.data.recordings import default_channels

HAPT_CLASS_COUNTS = {
    "WALKING": 1722,
    "WALKING_UPSTAIRS": 1544,
    "WALKING_DOWNSTAIRS": 1407,
    "SITTING": 1801,
    "STANDING": 1979,
    "LAYING": 1958,
}


def test_hapt_window_counts(hapt: Dataset, hapt_windows: Windows) -> None:
    w = hapt_windows
    assert w.x.shape == (10411, 128, 6) and w.x.dtype == np.float32
    assert w.y.dtype == np.int64 and w.subject.dtype == np.int32
    assert w.label_ids == [1, 2, 3, 4, 5, 6]
    assert w.labels == list(HAPT_CLASS_COUNTS)
    assert w.class_counts() == HAPT_CLASS_COUNTS
    test = np.isin(w.subject, UCI_HAR_TEST_SUBJECTS)
    assert int((~test).sum()) == 7415
    assert int(test.sum()) == 2996


def test_hapt_windows_hold_the_recorded_samples(hapt: Dataset, hapt_windows: Windows) -> None:
    # The first window is the first 128 samples of the first WALKING-or-other run of exp01.
    rec = hapt.recordings[0]
    labels = rec.labels
    lo = int(np.flatnonzero(np.isin(labels, [1, 2, 3, 4, 5, 6]))[0])
    np.testing.assert_array_equal(hapt_windows.x[0], rec.values[lo : lo + 128])
    assert hapt_windows.label_ids[int(hapt_windows.y[0])] == int(labels[lo])


def test_hapt_with_transitions(hapt: Dataset) -> None:
    w = make_windows(hapt, include_transitions=True)
    assert w.label_ids == list(range(1, 13))
    assert w.labels[6:] == [
        "STAND_TO_SIT",
        "SIT_TO_STAND",
        "SIT_TO_LIE",
        "LIE_TO_SIT",
        "STAND_TO_LIE",
        "LIE_TO_STAND",
    ]
    counts = w.class_counts()
    assert len(w) == 10929 and counts["STAND_TO_LIE"] == 139 and counts["SIT_TO_STAND"] == 33


def test_hapt_dataset_info_is_json(hapt: Dataset, hapt_windows: Windows) -> None:
    info = json.loads(json.dumps(dataset_info(hapt, hapt_windows)))
    assert info["name"] == "hapt"
    assert info["subjects"] == list(range(1, 31))
    assert info["n_recordings"] == 61
    assert info["n_samples"] == 1_122_772
    assert info["n_windows"] == 10411
    assert info["windows_per_class"] == HAPT_CLASS_COUNTS
    assert (info["train_windows"], info["test_windows"]) == (7415, 2996)
    assert info["uci_test_subjects"] == list(UCI_HAR_TEST_SUBJECTS)
    assert info["channels"][3] == {"name": "gyro_x", "unit": "rad/s"}


def test_hapt_split_has_no_subject_leakage_and_is_deterministic(hapt_windows: Windows) -> None:
    s = split_by_subject(hapt_windows, seed=0)
    train, val, test = set(s.train_subjects), set(s.val_subjects), set(s.test_subjects)
    assert test == set(UCI_HAR_TEST_SUBJECTS)
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(range(1, 31))
    assert len(val) == 3  # round(0.15 * 21)
    assert len(s.train) + len(s.val) == 7415 and len(s.test) == 2996
    for part, subjects in ((s.train, train), (s.val, val), (s.test, test)):
        assert set(np.unique(part.subject).tolist()) == subjects
        assert part.labels == hapt_windows.labels
    again = split_by_subject(hapt_windows, seed=0)
    assert again.val_subjects == s.val_subjects
    np.testing.assert_array_equal(again.val.y, s.val.y)
    others = {tuple(split_by_subject(hapt_windows, seed=k).val_subjects) for k in range(1, 6)}
    assert len(others | {tuple(s.val_subjects)}) > 1


def test_split_ignores_absent_test_subjects() -> None:
    w = _windows_for_subjects([1, 2, 3, 4, 5])
    s = split_by_subject(w, test_subjects=(2, 99), val_fraction=0.25, seed=3)
    assert s.test_subjects == [2]
    assert len(s.val_subjects) == 1 and s.val_subjects[0] in (1, 3, 4, 5)
    assert sorted(s.train_subjects + s.val_subjects) == [1, 3, 4, 5]
    none = split_by_subject(w, test_subjects=(), val_fraction=0.0)
    assert none.test_subjects == [] and none.val_subjects == [] and len(none.test) == 0
    assert none.test.x.shape == (0, 8, 6)
    with pytest.raises(DataError, match="val_fraction"):
        split_by_subject(w, val_fraction=1.0)


def _windows_for_subjects(subjects: list[int]) -> Windows:
    recs = [
        Recording(
            subject=s, session=f"s{s}", values=np.zeros((16, 6), np.float32), labels=np.ones(16, np.int16)
        )
        for s in subjects
    ]
    return make_windows(_dataset(recs), window=8, stride=8)


def _dataset(recordings: list[Recording]) -> Dataset:
    return Dataset(
        name="synthetic",
        recordings=recordings,
        label_names={1: "A", 2: "B", 3: "C"},
        default_activities=(1, 2),
        sample_rate_hz=50.0,
        channels=default_channels(),
    )


def _traced(subject: int, rec_id: int, labels: list[int]) -> Recording:
    """Values that say where they came from: channel 0 = sample index, 1 = recording, 2 = label."""
    lab = np.asarray(labels, dtype=np.int16)
    values = np.zeros((len(lab), 6), np.float32)
    values[:, 0] = np.arange(len(lab))
    values[:, 1] = rec_id
    values[:, 2] = lab
    return Recording(subject=subject, session=f"r{rec_id}", values=values, labels=lab)


def test_windows_never_cross_label_changes_unlabeled_samples_or_recordings() -> None:
    # Runs (window 4, stride 2): rec 0 = A*6, -1*3, A*5, B*4, C*8, B*3; rec 1 = B*3 (too short), A*9.
    rec0 = _traced(1, 0, [1] * 6 + [-1] * 3 + [1] * 5 + [2] * 4 + [3] * 8 + [2] * 3)
    rec1 = _traced(2, 1, [2] * 3 + [1] * 9)
    w = make_windows(_dataset([rec0, rec1]), window=4, stride=2)
    assert w.label_ids == [1, 2] and w.labels == ["A", "B"]
    # A*6 @0 -> starts 0,2; A*5 @9 -> 9; B*4 @14 -> 14; C not selected; B*3 too short; rec1 A*9 @3 -> 3,5,7.
    assert w.x[:, 0, 0].tolist() == [0, 2, 9, 14, 3, 5, 7]
    assert w.x[:, 0, 1].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert w.y.tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert w.subject.tolist() == [1, 1, 1, 1, 2, 2, 2]
    for win, y in zip(w.x, w.y, strict=True):
        assert np.all(np.diff(win[:, 0]) == 1)  # contiguous samples
        assert len(set(win[:, 1].tolist())) == 1  # one recording
        assert set(win[:, 2].tolist()) == {w.label_ids[int(y)]}  # one label, the window's own


def test_activity_selection_and_errors() -> None:
    ds = _dataset([_traced(1, 0, [1] * 8 + [2] * 8 + [3] * 8)])
    assert make_windows(ds, window=8, stride=8, activities=[3, 1]).label_ids == [1, 3]
    with pytest.raises(DataError, match=r"activities \[9\]"):
        make_windows(ds, activities=[1, 9])
    with pytest.raises(DataError, match=r"no window of 100 samples \(2.00 s at 50 Hz\) fits in any labelled run"):
        make_windows(ds, window=100)
    with pytest.raises(DataError, match="must be positive"):
        make_windows(ds, window=8, stride=0)
    # No transitions in this label set: include_transitions adds nothing rather than failing.
    assert make_windows(ds, window=8, stride=8, include_transitions=True).label_ids == [1, 2]


def test_subset_by_mask_and_index() -> None:
    w = _windows_for_subjects([1, 2, 3])
    assert len(w) == 6
    by_mask = w.subset(w.subject == 2)
    by_idx = w.subset([2, 3])
    np.testing.assert_array_equal(by_mask.subject, [2, 2])
    np.testing.assert_array_equal(by_idx.subject, [2, 2])
    assert by_idx.labels == w.labels and by_idx.label_ids == w.label_ids
    with pytest.raises(DataError, match="mask"):
        w.subset(np.ones(2, dtype=bool))


def test_recording_for_subject(hapt: Dataset) -> None:
    assert [r.session for r in recording_for_subject(hapt, 10)] == [
        "exp19_user10",
        "exp20_user10",
        "exp21_user10",
    ]
    with pytest.raises(DataError, match=r"subject 31 .*\(subjects: 1-30\)"):
        recording_for_subject(hapt, 31)


def test_recording_rejects_mismatched_shapes() -> None:
    with pytest.raises(DataError, match="values must be"):
        Recording(subject=1, session="x", values=np.zeros((4, 3), np.float32), labels=np.zeros(4, np.int16))
    with pytest.raises(DataError, match="3 labels for 4 samples"):
        Recording(subject=1, session="x", values=np.zeros((4, 6), np.float32), labels=np.zeros(3, np.int16))
