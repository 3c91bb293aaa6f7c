"""Splits by the user's own subjects: names kept through the data layer, defaults, --labels, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hartool.cli import cli
from hartool.core.errors import DataError
from hartool.data import UCI_HAR_TEST_SUBJECTS, Dataset, Windows, load_dataset, make_windows
from hartool.data.info import MIN_TEST_WINDOWS, MIN_TRAIN_WINDOWS, data_report
from hartool.data.splits import choose_split, resolve_subjects, training_data
from owndata_testing import basic_subjects, write_csv_dir, write_subject

NAMES = ["alice", "bob", "carol", "dave", "erin"]


@pytest.fixture()
def five(tmp_path: Path) -> Dataset:
    return load_dataset(f"csv:{write_csv_dir(tmp_path / 'five', basic_subjects(NAMES))}")


def _split(ds: Dataset, **kw):  # type: ignore[no-untyped-def]
    return choose_split(ds, make_windows(ds, 32, 16), **kw)


def _names(ds: Dataset, ids: list[int]) -> list[str]:
    return [ds.subject_name(s) for s in ids]


def test_subject_names_survive_loading(five: Dataset, tmp_path: Path) -> None:
    assert [five.subject_name(s) for s in five.in_name_order()] == NAMES
    # Numbers stay numbers; "07" and "7" are one subject; a file without '# subject:' uses its file name.
    root = tmp_path / "mixed"
    write_subject(root / "a.csv", "07", [("WALKING", 4)])
    write_subject(root / "b.csv", "7", [("SITTING", 4)])
    write_subject(root / "s12_walk.csv", None, [("WALKING", 4)])
    write_subject(root / "nobody.csv", None, [("WALKING", 4)])
    ds = load_dataset(f"csv:{root}")
    assert ds.subjects[:2] == [7, 12] and len(ds.subjects) == 3
    assert [ds.subject_name(s) for s in ds.subjects] == ["07", "12", "nobody"]
    assert resolve_subjects(ds, ["7", "nobody", "012"]) == [7, ds.subjects[2], 12]


def test_named_test_and_validation_subjects(five: Dataset) -> None:
    split, test_from, val_from = _split(five, test=["bob", "erin"], val=["alice"])
    assert (_names(five, split.test_subjects), _names(five, split.val_subjects)) == (["bob", "erin"], ["alice"])
    assert sorted(_names(five, split.train_subjects)) == ["carol", "dave"]
    assert (test_from, val_from) == ("given", "given")
    assert set(np.unique(split.test.subject)) == set(split.test_subjects)
    assert not set(split.train.subject) & (set(split.test_subjects) | set(split.val_subjects))


def test_default_split_of_a_csv_dir_is_seeded_and_never_empty(five: Dataset, tmp_path: Path) -> None:
    a, test_from, _ = _split(five, seed=3)
    b, _, _ = _split(five, seed=3)
    assert test_from == "seeded" and a.test_subjects == b.test_subjects and len(a.test_subjects) == 2  # 30 % of 5
    assert {tuple(_split(five, seed=k)[0].test_subjects) for k in range(6)} != {tuple(a.test_subjects)}
    # The case: three people recorded as subjects 1, 3 and 5 used to get an empty test set.
    ds = load_dataset(f"csv:{write_csv_dir(tmp_path / 'nums', basic_subjects(['1', '3', '5']))}")
    split, test_from, val_from = _split(ds)
    assert len(split.test_subjects) == 1 and len(split.test) > 0 and test_from == "seeded"
    assert len(split.val_subjects) == 1 and len(split.train_subjects) == 1
    # Two subjects: one to test, one to train; validation then watches the training windows.
    two = load_dataset(f"csv:{write_csv_dir(tmp_path / 'two', basic_subjects(['x', 'y']))}")
    data = training_data(two, window=32, stride=16, train_stride=16)
    assert data.val_from == "training windows" and len(data.val) > 0 and len(data.split.val_subjects) == 0
    assert set(np.unique(data.val.subject)) == set(data.split.train_subjects)


def test_seeded_choice_keeps_every_class_in_training(tmp_path: Path) -> None:
    subjects = basic_subjects(["a", "b", "c", "d"], labels=("WALKING", "SITTING"))
    subjects["e"] = [("WALKING", 20), ("SITTING", 20), ("LAYING", 20)]  # the only one who lay down...
    subjects["f"] = [("LAYING", 20)]
    ds = load_dataset(f"csv:{write_csv_dir(tmp_path / 'd', subjects)}")
    for seed in range(5):
        split, _, _ = _split(ds, seed=seed)
        assert split.train.class_counts()["LAYING"] > 0


def test_hapt_defaults_to_the_uci_test_people(hapt: Dataset, hapt_windows: Windows) -> None:
    split, test_from, val_from = choose_split(hapt, hapt_windows)
    assert (split.test_subjects, test_from, val_from) == (list(UCI_HAR_TEST_SUBJECTS), "dataset", "seeded")
    assert split.val_subjects == [17, 21, 26]  # the split every bundle so far was trained with
    named, _, _ = choose_split(hapt, hapt_windows, test=["02", "4"], val=["17"])
    assert (named.test_subjects, named.val_subjects) == ([2, 4], [17])


@pytest.mark.parametrize(("kw", "message"), [
    ({"test": ["bob", "zoe"]}, "--test-subjects: subject zoe is not in csv:"),
    ({"val": ["9"]}, "--val-subjects: subject 9 is not in csv:"),
    ({"test": ["bob"], "val": ["bob"]}, "subject bob is in both --test-subjects and --val-subjects"),
    ({"test": ["bob", "bob"]}, "--test-subjects: subject bob is named twice"),
    ({"test": ["alice", "bob", "carol"], "val": ["dave", "erin"]}, "no training subject left"),
])
def test_split_errors_are_one_line(five: Dataset, kw: dict, message: str) -> None:
    with pytest.raises(DataError) as err:
        _split(five, **kw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_subject_lists_the_ones_that_are_there(five: Dataset) -> None:
    with pytest.raises(DataError, match=r"\(subjects: alice, bob, carol, dave, erin\)$"):
        _split(five, test=["zoe"])


def test_fewer_than_two_subjects(tmp_path: Path) -> None:
    ds = load_dataset(f"csv:{write_csv_dir(tmp_path / 'one', basic_subjects(['solo']))}")
    with pytest.raises(DataError, match=r"1 subject with windows \(solo\); a split needs at least two"):
        _split(ds)


def test_a_class_without_training_windows(tmp_path: Path) -> None:
    subjects = basic_subjects(["a", "b", "c"], labels=("WALKING", "SITTING"))
    subjects["d"] = [("WALKING", 20), ("LAYING", 20)]
    ds = load_dataset(f"csv:{write_csv_dir(tmp_path / 'd', subjects)}")
    with pytest.raises(DataError, match=r"^class LAYING has no training windows \(training subjects: a, b, c\)"):
        _split(ds, test=["d"], val=[])
    # ...and a test subject with no windows of the chosen classes is named, not scored as empty.
    subjects["e"] = [("STANDING", 20)]
    ds = load_dataset(f"csv:{write_csv_dir(tmp_path / 'e', subjects)}")
    w = make_windows(ds, 32, 16, labels=["WALKING", "SITTING"])
    with pytest.raises(DataError, match=r"--test-subjects: subject e has no windows of WALKING, SITTING"):
        choose_split(ds, w, test=["e"])


def test_labels_subset_keeps_the_order_and_leaves_the_others_out(five: Dataset) -> None:
    w = make_windows(five, 32, 16, labels=["laying", "WALKING"])
    assert (w.labels, w.label_ids) == (["LAYING", "WALKING"], [6, 1])
    full = make_windows(five, 32, 16)
    assert len(w) == full.class_counts()["LAYING"] + full.class_counts()["WALKING"]
    # Class index follows the given order: LAYING windows are class 0.
    laying = full.x[full.y == full.labels.index("LAYING")]
    np.testing.assert_array_equal(np.sort(w.x[w.y == 0].reshape(len(laying), -1), axis=0),
                                  np.sort(laying.reshape(len(laying), -1), axis=0))
    data = training_data(five, window=32, stride=16, train_stride=8, labels=["SITTING", "WALKING"], test=["bob"])
    for part in (data.train, data.val, data.test):
        assert part.labels == ["SITTING", "WALKING"] and set(np.unique(part.y)) <= {0, 1}
    with pytest.raises(DataError, match=r"^label RUNNING is not in csv:.* \(labels: LAYING, SITTING, WALKING\)$"):
        make_windows(five, 32, 16, labels=["WALKING", "running"])
    with pytest.raises(DataError, match="named twice"):
        make_windows(five, 32, 16, labels=["WALKING", "walking"])


def test_manifest_section_names_every_split(five: Dataset) -> None:
    data = training_data(five, window=32, stride=16, train_stride=16, test=["carol"], val=["alice"])
    section = json.loads(json.dumps(data.manifest_section(None)))
    assert section["test_subject_names"] == ["carol"] and section["val_subject_names"] == ["alice"]
    assert sorted(section["train_subject_names"]) == ["bob", "dave", "erin"]
    assert section["split"] == {"test": "given", "val": "given"}
    assert [five.subject_name(s) for s in section["test_subjects"]] == ["carol"]


def test_data_info_counts_seconds_and_windows_per_subject_and_label(tmp_path: Path) -> None:
    root = tmp_path / "info"
    write_subject(root / "a1.csv", "ann", [("WALKING", 10.24), ("", 3), ("SITTING", 5.12)])
    write_subject(root / "a2.csv", "ann", [("WALKING", 2.56)])
    write_subject(root / "b.csv", "ben", [("WALKING", 2.0), ("SITTING", 7.68), ("LAYING", 5.12)])
    ds = load_dataset(f"csv:{root}")
    report = data_report(ds, make_windows(ds, 128, 64, allow_empty=True))
    rows = {r["subject"]: r for r in report["per_subject"]}
    # 128-sample windows, hop 64, at 50 Hz: a run of n samples gives (n - 128) // 64 + 1 windows.
    assert rows["ann"]["labels"]["WALKING"] == {"seconds": 12.8, "windows": 7 + 1}  # 512 and 128 samples
    assert rows["ann"]["labels"]["SITTING"] == {"seconds": 5.12, "windows": 3}
    assert rows["ann"]["labels"]["LAYING"] == {"seconds": 0.0, "windows": 0}
    assert rows["ben"]["labels"]["WALKING"] == {"seconds": 2.0, "windows": 0}  # 100 samples < one window
    assert rows["ben"]["labels"]["SITTING"] == {"seconds": 7.68, "windows": 5}
    assert (rows["ann"]["seconds"], rows["ann"]["windows"]) == (17.92, 11)
    warnings = report["warnings"]
    assert f"LAYING: 3 windows in all; training needs at least {MIN_TRAIN_WINDOWS}" in warnings
    assert "LAYING: recorded by ben only; it cannot be trained on one person and tested on another" in warnings
    assert "ben / WALKING: 2.0 s but no window (runs shorter than one window of 2.56 s)" in warnings
    assert f"ann / SITTING: 3 windows; a test score over fewer than {MIN_TEST_WINDOWS} is noise" in warnings
    # WALKING only has ann's windows, LAYING only ben's: whoever is tested, training lacks a class.
    assert report["default_split"]["error"].startswith("class ")
    assert warnings[-1] == f"training would stop: {report['default_split']['error']}"
    assert report["thresholds"]["min_train_windows_per_class"] == MIN_TRAIN_WINDOWS
    assert "uci_test_subjects" not in report  # no official split for csv:DIR


def test_data_info_cli_json_and_text(tmp_path: Path) -> None:
    root = write_csv_dir(tmp_path / "d", {"solo": [("WALKING", 3.0)]})
    result = CliRunner().invoke(cli, ["data", "info", f"csv:{root}", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["per_subject"][0]["labels"]["WALKING"] == {"seconds": 3.0, "windows": 1}
    assert any(w.startswith("only 1 subject(s) with windows (solo)") for w in info["warnings"])
    assert info["default_split"]["error"].startswith(f"csv:{root.resolve()}: 1 subject with windows (solo)")
    text = CliRunner().invoke(cli, ["data", "info", f"csv:{root}", "--window", "200"])
    assert text.exit_code == 0, text.output
    assert any(ln.split() == ["solo", "3/0", "3/0"] for ln in text.output.splitlines())
    assert "warning: solo / WALKING: 3.0 s but no window (runs shorter than one window of 4.00 s)" in text.output
