"""`--arch knn`: the template model is exactly 1-NN under its distance (Euclidean, or the symmetric LB_Keogh
bound in a band chosen on the templates; Keras and TFLite), streams without TensorFlow, and joins `--arch auto`
on small data only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hartool.core.bundle import Bundle
from hartool.core.preprocess import preprocess
from hartool.data.windows import Windows
from hartool.runtime.artifacts import load_bundle_predictor
from hartool.train.auto import candidates
from hartool.train.fit import TrainOptions, load_training_data
from hartool.train.knn import candidate_bands, choose_band, class_scores, per_class_cap, select_templates
from hartool_testing import hartool
from owndata_testing import write_subject

# WALKING_UPSTAIRS and WALKING_DOWNSTAIRS are the same synthetic signal: which one is nearest is a coin flip, so
# agreeing with brute-force 1-NN on every window is more than getting the easy labels right.
LABELS = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS")
RATE = 25
SECONDS = 10.0


def _running(x: np.ndarray, band: int, reduce: Any) -> np.ndarray:
    """The running max or min over +-band samples of (n, window, channels) series, one sample at a time."""
    return np.stack([reduce(x[:, max(0, i - band):i + band + 1], axis=1) for i in range(x.shape[1])], axis=1)


def _outside(v: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Per pair, the squared amounts by which ``v`` leaves the envelope [lower, upper], summed."""
    return (np.maximum(v - upper, 0) ** 2 + np.maximum(lower - v, 0) ** 2).sum((2, 3))


def nearest_labels(x: np.ndarray, t: np.ndarray, ty: np.ndarray, band: int = 0) -> np.ndarray:
    """Brute-force 1-NN: the label of the template at the least distance, written from the definitions.

    Band 0: the Euclidean distance. Else the symmetric LB_Keogh bound: the larger of how far the window leaves
    the template's envelope and how far the template leaves the window's.
    """
    x, t = x.astype(np.float64), t.astype(np.float64)
    if band == 0:
        d = ((x[:, None] - t[None]) ** 2).sum((2, 3))
    else:
        tu, tl = _running(t, band, np.max)[None], _running(t, band, np.min)[None]
        xu, xl = _running(x, band, np.max)[:, None], _running(x, band, np.min)[:, None]
        d = np.maximum(_outside(x[:, None], tu, tl), _outside(t[None], xu, xl))
    return ty[d.argmin(1)]


@pytest.mark.parametrize("band", [0, 2])
def test_template_model_is_exactly_1nn(band: int) -> None:
    from hartool.train.knn import build_knn_model
    from hartool.train.models import fixed_batch_twin

    rng = np.random.default_rng(0)
    counts = (7, 3, 12)  # uneven: classes with fewer templates than the largest repeat their own
    ty = np.repeat(np.arange(3), counts)
    t = rng.normal(size=(len(ty), 16, 2)).astype(np.float32)
    x = rng.normal(size=(200, 16, 2)).astype(np.float32)
    model = build_knn_model(t, ty, 3, tau=5.0, band=band)
    probs = model.predict(x, verbose=0)
    expected = nearest_labels(x, t, ty, band)
    assert len(set(expected.tolist())) == 3
    if band:  # the bound is not the Euclidean distance: some windows change their nearest template
        assert np.mean(expected != nearest_labels(x, t, ty)) > 0.05
    np.testing.assert_array_equal(probs.argmax(1), expected)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    # The export rebuilds the model from its config: the band's constants must survive that.
    twin = fixed_batch_twin(model, "knn")
    np.testing.assert_allclose(np.asarray(twin(x[:1])), probs[:1], atol=1e-5)
    np.testing.assert_array_equal(class_scores(x, t.astype(np.float64), ty, 3, band=band).argmax(1), expected)


def test_band_is_chosen_on_the_templates_leave_one_subject_out() -> None:
    # Three gestures share a first peak and differ by a small second one; each of 5 subjects moves 3 samples
    # later than the last. Euclidean 1-NN then matches the other gesture of the same lateness (chance), a band
    # wider than the lateness matches the gesture.
    window, grid = 48, np.arange(48)

    def bump(at: float, height: float = 1.0) -> np.ndarray:
        return height * np.exp(-0.5 * (grid - at) ** 2)

    shapes = (lambda s: bump(8 + s), lambda s: bump(8 + s) + bump(26 + s, 0.5),
              lambda s: bump(8 + s) + bump(36 + s, 0.5))
    ty = np.repeat(np.arange(3), 5)
    subject = np.tile(np.arange(5), 3)
    t = np.stack([shapes[c](3 * s) for c, s in zip(ty, subject, strict=True)])[..., None].astype(np.float32)
    chosen = choose_band(t, ty, subject, 3)
    assert candidate_bands(len(t), window, 1) == (0, 1, 2, 5)
    assert chosen["band_loo_accuracy"]["0"] < 0.5
    assert chosen["band"] == 5 and chosen["loo_accuracy"] == 1.0 and chosen["tau"] > 0
    # Everyone on time: every band classifies the templates, and the narrowest of equals (Euclidean) is kept.
    on_time = np.stack([shapes[c](0) for c in ty])[..., None].astype(np.float32)
    chosen = choose_band(on_time, ty, subject, 3)
    assert set(chosen["band_loo_accuracy"].values()) == {1.0} and chosen["band"] == 0
    # Too many templates for the search: the Euclidean distance alone, no matter the data.
    assert candidate_bands(2000, 128, 6) == (0,)


def test_template_budget_and_subset() -> None:
    # HAPT's windows (128 x 6 values) fit 1,365 template units: 227 per class of 6; tiny windows stop at 2,000.
    assert per_class_cap(6, 768) == 227 and per_class_cap(4, 10) == 500
    y = np.repeat(np.arange(3), (5, 40, 300))
    keep = select_templates(y, 30, seed=1)
    assert np.bincount(y[keep]).tolist() == [5, 30, 30]
    np.testing.assert_array_equal(keep, select_templates(y, 30, seed=1))


def _windows(counts: list[int]) -> Windows:
    y = np.repeat(np.arange(len(counts)), counts)
    return Windows(x=np.zeros((len(y), 4, 6), np.float32), y=y, subject=np.zeros(len(y), np.int32),
                   labels=[f"c{i}" for i in range(len(counts))], label_ids=list(range(len(counts))))


def test_auto_offers_knn_on_small_data_only() -> None:
    # HAPT's own training split (thousands of windows per class): knn is not even a candidate.
    hapt = load_training_data(TrainOptions(orientation="fixed"))
    assert candidates(hapt.split.train) == ("cnn", "features")
    # The watch set (393 in the median class) neither; BasicMotions (51) and the Wiimote gestures (4) do.
    assert candidates(_windows([380, 393, 410])) == ("cnn", "features")
    assert candidates(_windows([51, 49, 52, 51])) == ("cnn", "features", "knn")
    assert candidates(_windows([4, 5, 4, 4, 5])) == ("cnn", "features", "knn")


@pytest.fixture(scope="module")
def knn_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("knn")
    data = root / "data"
    for i, name in enumerate(("ann", "ben", "cat", "dan")):
        write_subject(data / f"{name}.csv", name, [(label, SECONDS) for label in LABELS], seed=i, rate_hz=RATE)
    bundle = root / "bundle"
    hartool("train", "--dataset", f"csv:{data}", "--arch", "knn", "--test-subjects", "dan", "--quiet",
            "--out", str(bundle))
    hartool("quantize", str(bundle), "--formats", "tflite", "--modes", "fp32,int8", "--calibration-windows", "32")
    return bundle, data


def test_knn_bundle_keras_and_tflite_equal_brute_force_1nn(knn_bundle: tuple[Path, Path]) -> None:
    bundle_dir, _ = knn_bundle
    bundle = Bundle.load(bundle_dir)
    m = bundle.manifest
    knn = m["training"]["knn"]
    assert m["arch"] == "knn" and knn["subset"] == "every window" and knn["tau"] > 0
    assert set(knn["band_loo_accuracy"]) == {str(b) for b in candidate_bands(knn["templates"], m["window"], 6)}
    # These seeded walks pick a band (2 samples), so the stream, quantize and enroll tests below run that graph.
    assert knn["band"] > 0 and knn["distance"] == f"symmetric LB_Keogh, band {knn['band']} samples"
    t = m["training"]
    data = load_training_data(TrainOptions(
        arch="knn", dataset=m["dataset"]["name"], window=m["window"], stride=m["stride"], seed=t["seed"],
        test_subjects=tuple(m["dataset"]["test_subject_names"]),
        val_subjects=tuple(m["dataset"]["val_subject_names"]), labels=tuple(m["labels"])))
    spec = m["preprocessing"]
    templates = np.concatenate([preprocess(data.train.x, spec), preprocess(data.val.x, spec)])
    ty = np.concatenate([data.train.y, data.val.y])
    assert knn["templates"] == len(ty)
    x_test = preprocess(data.test.x, spec)
    expected = nearest_labels(x_test, templates, ty, knn["band"])
    # Not all the truth: the two identical classes are told apart by chance, as 1-NN does.
    assert 0 < np.mean(expected == data.test.y) < 1
    keras_pred = np.load(bundle_dir / "keras_test_probs.npy").argmax(1)
    np.testing.assert_array_equal(keras_pred, expected)
    _, pred = load_bundle_predictor(bundle, "tflite-fp32")
    np.testing.assert_array_equal(pred.predict(x_test).argmax(1), expected)
    int8 = bundle.artifact("tflite-int8")
    assert int8["accuracy"] is not None and int8["agreement"] is not None


def test_knn_bundle_streams_without_tensorflow(knn_bundle: tuple[Path, Path]) -> None:
    bundle, data = knn_bundle
    m = json.loads((bundle / "manifest.json").read_text())
    window, stride = m["window"], m["stride"]
    code = (
        "import sys\nsys.modules['tensorflow'] = None\nsys.modules['keras'] = None\n"
        "from hartool.cli import cli\n"
        "try:\n    cli.main(sys.argv[1:], prog_name='hartool')\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx') "
        "and sys.modules[m] is not None)\nprint('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, "stream", str(bundle), "--port", str(data / "dan.csv"),
                           "--artifact", "tflite-int8", "--jsonl", "--smooth", "none"],
                          capture_output=True, text=True, timeout=300, check=True)
    assert "HEAVY []" in proc.stderr, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    seg = int(round(SECONDS * RATE))
    assert len(rows) == (seg * len(LABELS) - window) // stride + 1
    # Windows inside one activity: WALKING is WALKING; the two identical classes go to one of the two.
    pure = [(r["label"], LABELS[(r["window"] * stride) // seg]) for r in rows
            if (r["window"] * stride) // seg == (r["window"] * stride + window - 1) // seg]
    walking = [label for label, truth in pure if truth == "WALKING"]
    assert walking and all(label == "WALKING" for label in walking)
    assert all(label in LABELS[1:] for label, truth in pure if truth != "WALKING")


def test_knn_bundle_enrolls_a_new_activity(knn_bundle: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, _ = knn_bundle
    # The embedding: per class, the nearest template's score and the mean score (2 x 3 classes).
    assert json.loads((bundle / "manifest.json").read_text())["embedding"]["dim"] == 2 * len(LABELS)
    mine = tmp_path / "bundle"
    shutil.copytree(bundle, mine)
    laying = write_subject(tmp_path / "new" / "dan_laying.csv", "dan", [("LAYING", 15.0)], seed=7, rate_hz=RATE)
    enrolled = json.loads(hartool("enroll", str(mine), "--label", "LAYING", "--port", str(laying), "--json").stdout)
    assert enrolled["added"] == ["LAYING"]
    again = write_subject(tmp_path / "new" / "dan_laying2.csv", "dan", [("LAYING", 10.0)], seed=8, rate_hz=RATE)
    rows = [json.loads(line) for line in hartool("stream", str(mine), "--port", str(again), "--jsonl",
                                                   "--smooth", "none").stdout.splitlines()]
    assert rows and all(r["labels"] == [*LABELS, "LAYING"] for r in rows)
    assert sum(r["label"] == "LAYING" for r in rows) >= 0.9 * len(rows)
