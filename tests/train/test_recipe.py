"""The recipe follows the data: turns about a vertical only with an upright trunk, placement-free augmentation
otherwise, and the small-data recipe (more steps, smaller batches) when classes have few windows (numpy only)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from hartool.data import load_dataset
from hartool.data.splits import training_data
from hartool.train.auto import MAX_CV_PASSES, MIN_CV_WINDOWS, auto_budget, pick, subject_folds
from hartool.train.fit import (
    PLACEMENT_FREE_TILT_DEG,
    SMALL_DATA_BATCH,
    SMALL_DATA_MAX_EPOCHS,
    SMALL_DATA_MIN_STEPS,
    TrainOptions,
    choose_recipe,
    default_orientation,
    trunk_axis,
    with_lengths,
)
from owndata_testing import basic_subjects, write_csv_dir


def _windows(gravity: np.ndarray, shake: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 32, 6) windows whose mean acceleration is ``gravity`` (n, 3), shaken by ``shake`` g."""
    x = np.zeros((len(gravity), 32, 6), np.float32)
    x[..., :3] = gravity[:, None, :] + rng.normal(0, shake, size=(len(gravity), 32, 3))
    return x


def _dirs(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_upright_trunk_is_told_from_a_swinging_wrist() -> None:
    rng = np.random.default_rng(0)
    up = np.tile([1.0, 0.0, 0.0], (300, 1))
    # Waist: standing still and walking both upright, some lying: a trunk.
    waist = np.concatenate([_windows(up[:150], 0.02, rng), _windows(up[150:], 0.3, rng),
                            _windows(np.tile([0.0, 0.0, 1.0], (60, 1)), 0.02, rng)])
    axis = trunk_axis(waist)
    assert axis is not None and np.dot(axis, [1.0, 0.0, 0.0]) > 0.99
    # Wrist: still windows with the arm hanging (one direction), active windows pointing anywhere.
    wrist = np.concatenate([_windows(up[:200], 0.02, rng), _windows(_dirs(200, rng), 0.3, rng)])
    assert trunk_axis(wrist) is None


def test_small_data_and_no_trunk_choose_their_recipe(tmp_path: Path) -> None:
    root = write_csv_dir(tmp_path / "d", basic_subjects(["ann", "ben", "cat"], 15.0, labels=("WALKING", "LAYING")))
    ds = load_dataset(f"csv:{root}")
    data = training_data(ds, window=128, stride=64, train_stride=16, test=["cat"])
    opts, recipe = choose_recipe(TrainOptions(window=128, stride=64), data)
    # Half walking upright, half lying: no dominant upright posture, so no turns and a small tilt instead.
    assert recipe["placement"] == "placement-free" and opts.aug_tilt_deg == PLACEMENT_FREE_TILT_DEG
    assert recipe["name"] == "small-data" and opts.batch_size == SMALL_DATA_BATCH
    per_epoch = int(np.ceil(len(data.train.y) / SMALL_DATA_BATCH))
    # 1500 steps, but a tiny set stops at the epoch cap.
    assert opts.epochs == min(SMALL_DATA_MAX_EPOCHS, int(np.ceil(SMALL_DATA_MIN_STEPS / per_epoch))) > 30
    assert any(n.startswith("small-data recipe:") for n in recipe["notes"])
    # What the user set wins.
    mine, _ = choose_recipe(TrainOptions(window=128, stride=64, epochs=3, aug_tilt_deg=0.0), data)
    assert mine.epochs == 3 and mine.aug_tilt_deg == 0.0


def test_default_orientation_is_free_only_for_a_trunk_worn_cnn(tmp_path: Path) -> None:
    hapt = load_dataset("hapt")
    opts = with_lengths(TrainOptions(), hapt.sample_rate_hz)
    mode, why = default_orientation(opts, hapt)
    assert mode == "free" and why.startswith("trunk-worn")
    assert default_orientation(dataclasses.replace(opts, arch="lstm"), hapt)[0] == "fixed"
    # Half walking, half lying: no upright trunk to calibrate to.
    root = write_csv_dir(tmp_path / "d", basic_subjects(["ann", "ben", "cat"], 15.0, labels=("WALKING", "LAYING")))
    ds = load_dataset(f"csv:{root}")
    mode, why = default_orientation(with_lengths(TrainOptions(test_subjects=("cat",)), ds.sample_rate_hz), ds)
    assert mode == "fixed" and why.startswith("no upright trunk")


def test_auto_folds_cover_every_subject_once() -> None:
    names = [f"s{i}" for i in range(7)]
    folds = subject_folds(names, 3, seed=0)
    assert sorted(n for f in folds for n in f) == names and sorted(len(f) for f in folds) == [2, 2, 3]
    assert folds == subject_folds(names, 3, seed=0)


def _pool(subjects: int, windows_each: int) -> SimpleNamespace:
    """What auto_budget reads of a TrainingData: the pool's windows and subjects."""
    w = SimpleNamespace(y=np.zeros(subjects * windows_each, np.int64))
    split = SimpleNamespace(train=w, val=SimpleNamespace(y=np.zeros(0, np.int64)),
                            train_subjects=list(range(subjects)), val_subjects=[])
    return SimpleNamespace(train=w, split=split)


def test_auto_repeats_its_folds_only_when_one_pass_scores_few_windows() -> None:
    opts = TrainOptions()
    # 50 one-window series (the Wiimote gestures): one pass of 5 folds scores 50 windows, so 3 passes.
    wii = auto_budget(opts, _pool(50, 1), ("cnn", "knn"))
    assert (wii["folds"], wii["passes"]) == (5, min(MAX_CV_PASSES, -(-MIN_CV_WINDOWS // 50))) == (5, 3)
    assert "3 passes of 5 folds" in wii["why"]
    assert auto_budget(opts, _pool(100, 1), ("cnn",))["passes"] == 2
    # BasicMotions' 40 series of 6 windows: 240 scored windows in one pass.
    assert auto_budget(opts, _pool(40, 6), ("cnn",))["passes"] == 1
    # Every subject its own fold: another pass would draw the same folds.
    assert auto_budget(opts, _pool(3, 1), ("cnn",))["passes"] == 1
    assert subject_folds([f"s{i}" for i in range(50)], 5, 0) != subject_folds([f"s{i}" for i in range(50)], 5, 1)


def test_auto_keeps_the_cnn_unless_another_arch_is_clearly_better() -> None:
    def scores(cnn: list[float], feats: list[float]) -> list[dict]:
        return [{"arch": "cnn", "accuracy": a} for a in cnn] + [{"arch": "features", "accuracy": a} for a in feats]

    # Better on every fold: clearly better.
    assert pick(scores([0.70, 0.75, 0.72], [0.95, 0.90, 0.97])) == "features"
    # Better on the mean, but one fold says the opposite by as much: noise, the CNN stays.
    assert pick(scores([0.96, 0.88, 0.95], [0.93, 0.95, 0.94])) == "cnn"
    assert pick(scores([0.9, 0.9], [0.9, 0.9])) == "cnn"
