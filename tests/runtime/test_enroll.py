"""Enrollment end to end on the tiny bundle: embedding output -> enroll from a recorded CSV -> list/remove/replace
-> stream applies the head; every fatal error; no TensorFlow during enrollment."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hartool.wire.spec import SourceSpec
from hartool_testing import hartool

NEW = "BRUSHING_TEETH"
RATE = 50.0


def _write_csv(path: Path, values: np.ndarray, labels: list[str] | str = "") -> Path:
    from hartool.core.csvformat import format_header, format_row

    labels = [labels] * len(values) if isinstance(labels, str) else labels
    with path.open("w", encoding="utf-8") as fh:
        fh.write(format_header({"subject": "wearer", "sample_rate_hz": RATE, "units": "acc=g gyro=rad/s"}))
        for i, (row, lab) in enumerate(zip(values, labels, strict=True)):
            fh.write(format_row(i / RATE, row, lab))
    return path


def _brushing(seconds: float, seed: int = 0) -> np.ndarray:
    """A wrist brushing teeth: gravity sideways, a 4 Hz back-and-forth on one axis and its rotation."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    v = np.zeros((len(t), 6), np.float32)
    v[:, 0] = 0.9 + 0.6 * np.sin(2 * np.pi * 4.0 * t)
    v[:, 1] = 0.3 * np.cos(2 * np.pi * 4.0 * t)
    v[:, 2] = 0.2
    v[:, 3] = 3.0 * np.cos(2 * np.pi * 4.0 * t)
    v[:, 5] = 1.5 * np.sin(2 * np.pi * 4.0 * t)
    return v + rng.normal(0, 0.02, v.shape).astype(np.float32)


def _activity(name: str, seconds: float, subject: int = 9) -> np.ndarray:
    """``seconds`` of a test subject's real samples of one activity (HAPT, g and rad/s)."""
    from hartool.data import HAPT_LABEL_NAMES, load_dataset, recording_for_subject

    code = {v: k for k, v in HAPT_LABEL_NAMES.items()}[name]
    recs = recording_for_subject(load_dataset("hapt"), subject)
    values = np.concatenate([r.values[r.labels == code] for r in recs])
    return values[: int(seconds * RATE)]


@pytest.fixture(scope="module")
def enroll_bundle(trained_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CNN quantized to tflite fp32/int8 and onnx fp32/int8 (with embedding outputs)."""
    out = tmp_path_factory.mktemp("enroll") / "cnn"
    shutil.copytree(trained_bundle, out)
    hartool("quantize", str(out), "--modes", "fp32,int8", "--calibration-windows", "64")
    return out


@pytest.fixture()
def bundle(enroll_bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(enroll_bundle, dst)
    return dst


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("recordings")
    # 1,536 samples: the brushing then starts on the enrollment's 16-sample grid, so the streamed windows are
    # windows the head was fitted on.
    standing = _activity("STANDING", 1536 / RATE)
    return {
        "brushing": _write_csv(root / "brushing.csv", _brushing(35.0, seed=1)),
        "short": _write_csv(root / "short.csv", _brushing(4.0)),
        "empty": _write_csv(root / "empty.csv", np.empty((0, 6), np.float32)),
        # Standing, then the brushing that was enrolled: a 1-epoch model's embedding is too weak to promise
        # more than recognising what it was taught (the benchmark measures new sessions of real people).
        "session": _write_csv(root / "session.csv", np.concatenate([standing, _brushing(30.0, seed=1)])),
        "personal": _write_csv(root / "personal.csv",
                               np.concatenate([_activity("WALKING", 20.0, 4), _activity("SITTING", 20.0, 4)]),
                               ["WALKING"] * 1000 + ["SITTING"] * 1000),
    }


def test_every_artifact_has_an_embedding_output_and_reference_windows(enroll_bundle: Path) -> None:
    from hartool.core.bundle import Bundle
    from hartool.runtime.backends import load_predictor

    b = Bundle.load(enroll_bundle)
    emb = b.manifest["embedding"]
    assert set(emb["artifacts"]) == {a["name"] for a in b.artifacts}
    assert (enroll_bundle / emb["reference"]["file"]).is_file() and emb["reference"]["windows"] > 0
    x = np.random.default_rng(0).normal(size=(3, b.window, len(b.channels))).astype(np.float32)
    for entry in b.artifacts:
        pred = load_predictor(b.artifact_path(entry), window=b.window, channels=len(b.channels),
                              n_classes=len(b.labels))
        probs, e = pred.predict_with_embedding(x)
        assert probs.shape == (3, len(b.labels)) and e.shape == (3, emb["artifacts"][entry["name"]])
        # Same interpreter call, same probabilities as the plain path.
        np.testing.assert_array_equal(probs, pred.predict(x))
        assert np.all(np.isfinite(e)) and float(np.abs(e).sum()) > 0


def test_enroll_list_replace_remove_and_stream(bundle: Path, recordings: dict[str, Path]) -> None:
    proc = hartool("enroll", str(bundle), "--label", NEW.lower().replace("_", " "), "--port",
                   str(recordings["brushing"]), "--seconds", "30", "--by", "tester", "--json")
    result = json.loads(proc.stdout)
    head = result["head"]
    assert result["added"] == [NEW] and head["new_labels"] == [NEW] and head["name"] == "enrolled"
    # The capture's countdown on stderr (printed by the CLI from the library's progress callback).
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("captured ")] == [
        "captured 5 s of 30 s (25 s to go)", "captured 10 s of 30 s (20 s to go)", "captured 15 s of 30 s (15 s to go)",
        "captured 20 s of 30 s (10 s to go)", "captured 25 s of 30 s (5 s to go)", "captured 30 s of 30 s"]
    # 30 s at 50 Hz, windows of 128 every 16 samples: (1500 - 128) // 16 + 1.
    assert result["seconds"] == 30.0 and result["windows"] == 86
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["head"]["enrolled"][0]["by"] == "tester"
    assert (bundle / manifest["head"]["file"]).is_file() and (bundle / manifest["head"]["data"]["file"]).is_file()

    listed = json.loads(hartool("enroll", str(bundle), "--list", "--json").stdout)
    assert [e["label"] for e in listed["enrolled"]] == [NEW]
    assert NEW in hartool("enroll", str(bundle), "--list").stdout

    again = hartool("enroll", str(bundle), "--label", NEW, "--port", str(recordings["brushing"]), check=False)
    assert again.returncode != 0 and "already enrolled" in again.stderr.strip().splitlines()[-1]
    old_file = manifest["head"]["file"]
    hartool("enroll", str(bundle), "--label", NEW, "--port", str(recordings["brushing"]), "--replace")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["head"]["file"] != old_file and not (bundle / old_file).exists()
    assert [e["label"] for e in manifest["head"]["enrolled"]] == [NEW]

    _stream_applies_head(bundle, recordings["session"])

    # A truncated enrollment file (a copy cut short) is one line naming it, and nothing is removed.
    data = bundle / manifest["head"]["data"]["file"]
    intact = data.read_bytes()
    data.write_bytes(intact[: len(intact) // 2])
    cut = hartool("enroll", str(bundle), "--remove", NEW, check=False)
    assert cut.returncode != 0 and "Traceback" not in cut.stderr
    assert cut.stderr.strip().count("\n") == 0 and data.name in cut.stderr and "corrupt" in cut.stderr
    assert json.loads((bundle / "manifest.json").read_text())["head"]["file"] == manifest["head"]["file"]
    data.write_bytes(intact)

    hartool("enroll", str(bundle), "--remove", NEW)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert "head" not in manifest
    assert not list(bundle.glob("head-*.npz")) and not list(bundle.glob("enroll-*.npz"))


def _stream_applies_head(bundle: Path, session: Path) -> None:
    # The artifact stream picks by default is the one enrollment embedded with (the manifest names it).
    proc = hartool("stream", str(bundle), "--port", str(session), "--jsonl", "--smooth", "none")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert rows and all("head" in r for r in rows)
    standing = [r for r in rows if r["end_sample"] <= 1536]
    brushing = [r for r in rows if r["end_sample"] - 128 >= 1536]
    assert len(standing) >= 15 and len(brushing) >= 15
    # The enrolled activity is recognised by the enrolled head; standing is left to the model.
    assert np.mean([r["label"] == NEW for r in brushing]) >= 0.75
    assert all(r["head"] == "enrolled" for r in brushing if r["label"] == NEW)
    assert np.mean([r["label"] != NEW for r in standing]) >= 0.8
    assert any(r["head"] == "model" for r in standing)


def test_personalize_from_labelled_recording(bundle: Path, recordings: dict[str, Path]) -> None:
    out = json.loads(hartool("enroll", str(bundle), "--personalize", "--port", str(recordings["personal"]),
                             "--json").stdout)
    assert sorted(out["added"]) == ["SITTING", "WALKING"] and out["head"]["personalized"] is True
    assert out["head"]["name"] == "personalized" and out["head"]["new_labels"] == []
    from hartool.runtime.heads import load_head

    head = load_head(bundle)
    assert head is not None and head.labels == json.loads((bundle / "manifest.json").read_text())["labels"]
    rng = np.random.default_rng(0)
    probs, labels, name = head.apply(rng.normal(size=head.mean.shape[0]).astype(np.float32),
                                     np.full(len(head.labels), 1.0 / len(head.labels), np.float32))
    assert name == "personalized" and probs.shape == (len(labels),) and abs(float(probs.sum()) - 1.0) < 1e-4
    hartool("enroll", str(bundle), "--remove", "walking")
    left = json.loads(hartool("enroll", str(bundle), "--list", "--json").stdout)
    assert [e["label"] for e in left["personalization"]] == ["SITTING"]


@pytest.mark.parametrize(("case", "message"), [
    ("empty", "no samples"),
    ("short", "too short"),
    ("model-label", "one of the model's own activities"),
    ("no-embedding", "no embedding output"),
    ("remove-unknown", "was not enrolled"),
])
def test_fatal_errors_are_one_line_and_leave_the_bundle_alone(case: str, message: str, bundle: Path,
                                                               trained_bundle: Path, recordings: dict[str, Path],
                                                               tmp_path: Path) -> None:
    target = bundle
    args = ["--label", NEW, "--port", str(recordings["brushing"])]
    if case in ("empty", "short"):
        args = ["--label", NEW, "--port", str(recordings[case])]
    elif case == "model-label":
        args = ["--label", "walking", "--port", str(recordings["brushing"])]
    elif case == "no-embedding":
        target = tmp_path / "plain"
        shutil.copytree(trained_bundle, target)
    elif case == "remove-unknown":
        args = ["--remove", "SWIMMING"]
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
    proc = hartool("enroll", str(target), *args, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert message in lines[-1] and lines[-1].startswith("Error:") and "Traceback" not in proc.stderr
    after = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
    assert after == before


def test_enrollment_never_imports_tensorflow(bundle: Path, recordings: dict[str, Path]) -> None:
    code = (
        "import sys\n"
        "from hartool.cli import cli\n"
        "try:\n"
        f"    cli.main(['enroll', {str(bundle)!r}, '--label', 'BRUSHING_TEETH', '--port', "
        f"{str(recordings['brushing'])!r}], prog_name='hartool', standalone_mode=False)\n"
        "finally:\n"
        "    bad = sorted(m for m in sys.modules if m == 'tensorflow' or m.startswith(('tensorflow.', 'keras')))\n"
        "    print('HEAVY', bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stdout
    assert json.loads((bundle / "manifest.json").read_text())["head"]["new_labels"] == [NEW]


def test_failed_commit_keeps_the_old_head(bundle: Path, recordings: dict[str, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from hartool.core.bundle import Bundle
    from hartool.runtime import enroll as lib

    lib.enroll(bundle, lib.EnrollOptions(SourceSpec(str(recordings["brushing"])), label=NEW))
    manifest_before = (bundle / "manifest.json").read_bytes()
    files_before = sorted(p.name for p in bundle.iterdir())

    def broken_save(self: Bundle) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(Bundle, "save", broken_save)
    with pytest.raises(OSError):
        lib.enroll(bundle, lib.EnrollOptions(SourceSpec(str(recordings["brushing"])), label=NEW, replace=True))
    assert (bundle / "manifest.json").read_bytes() == manifest_before
    assert sorted(p.name for p in bundle.iterdir()) == files_before


def test_head_leaves_old_classes_to_the_model_when_the_gate_is_closed() -> None:
    from hartool.runtime.heads import Head

    d, k = 4, 3
    head = Head(name="enrolled", base_labels=["A", "B", "C"], new_labels=["NEW"], mean=np.zeros(d, np.float32),
                scale=np.ones(d, np.float32), weights=np.vstack([np.zeros((k, d)), 5.0 * np.eye(d)[:1]]).astype(np.float32),
                bias=np.array([0, 0, 0, -2], np.float32))
    probs = np.array([0.1, 0.7, 0.2], np.float32)
    out, labels, name = head.apply(np.array([-3.0, 0, 0, 0], np.float32), probs)
    assert labels == ["A", "B", "C", "NEW"] and name == "model"
    np.testing.assert_allclose(out[:3] / out[:3].sum(), probs, rtol=1e-5)
    assert out[3] < 1e-3
    out, _, name = head.apply(np.array([3.0, 0, 0, 0], np.float32), probs)
    assert name == "enrolled" and out.argmax() == 3


def test_overlap_is_warned_with_the_expected_confusion() -> None:
    from hartool.runtime.enroll import overlap_warnings

    expected = {"recall": 0.55, "read_as": {"STROLLING": 0.55, "WALKING": 0.4, "STANDING": 0.05},
                "old_taken": {"WALKING": 0.08, "STANDING": 0.0}}
    lines = overlap_warnings("STROLLING", expected)
    assert lines == ["warning: STROLLING overlaps WALKING: expect about 40% of STROLLING windows read as WALKING "
                     "and 8% of WALKING windows read as STROLLING"]
    assert overlap_warnings("STROLLING", {"read_as": {"STROLLING": 0.95, "WALKING": 0.05},
                                          "old_taken": {"WALKING": 0.01}}) == []


def test_own_data_bundle_enrolls_and_streams(tmp_path: Path) -> None:
    """csv:DIR with named subjects -> train with a named test subject -> quantize -> enroll -> stream.

    (Recording those files from a simulated board is tests/test_own_data.py's part of the same path.)
    """
    from hartool_testing import TINY_TRAIN
    from owndata_testing import activity_signal, write_subject

    data = tmp_path / "my-data"
    data.mkdir()
    for i, subject in enumerate(("alice", "bob", "carol")):
        write_subject(data / f"{subject}.csv", subject, [("WALKING", 20.0), ("LAYING", 20.0)], seed=i)
    bundle = tmp_path / "bundle"
    hartool("train", "--dataset", f"csv:{data}", "--arch", "cnn", "--test-subjects", "carol",
            "--labels", "WALKING,LAYING",
            "--out", str(bundle), *TINY_TRAIN)
    hartool("quantize", str(bundle), "--formats", "tflite", "--modes", "int8", "--calibration-windows", "16")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["embedding"]["reference"]["splits"]["val"] > 0  # validation subject found by name
    # Half walking, half lying: no dominant upright posture to turn the training windows about.
    assert manifest["training"]["aug_yaw_axis"] is None and manifest["training"]["aug_yaw_deg"] == 0.0

    brushing = _brushing(30.0, seed=2)
    out = json.loads(hartool("enroll", str(bundle), "--label", NEW, "--port",
                             str(_write_csv(tmp_path / "brushing.csv", brushing)), "--json").stdout)
    assert out["head"]["new_labels"] == [NEW] and out["head"]["base_labels"] == ["WALKING", "LAYING"]

    laying = activity_signal("LAYING", 1536, np.random.default_rng(7))
    session = _write_csv(tmp_path / "session.csv", np.concatenate([laying, brushing]))
    proc = hartool("stream", str(bundle), "--port", str(session), "--jsonl", "--smooth", "none")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    first = [r for r in rows if r["end_sample"] <= 1536]
    taught = [r for r in rows if r["end_sample"] - 128 >= 1536]
    assert np.mean([r["label"] == NEW and r["head"] == "enrolled" for r in taught]) >= 0.75
    assert np.mean([r["label"] == "LAYING" and r["head"] == "model" for r in first]) >= 0.75


def test_enroll_from_a_100_hz_phone_app_resamples_like_the_stream(bundle: Path, tmp_path: Path) -> None:
    """Sensor Logger at ~100 Hz, acc / gravity / gyro on their own jittery clocks, in m/s2: enrollment takes
    the stream's path onto the model's 50 Hz grid, so its samples are the brushing that was played."""
    from hartool.core.bundle import Bundle
    from hartool.runtime.enroll import EnrollOptions, read_samples
    from hartool.sim.apps import sensorlogger_packets

    played = _brushing(32.0, seed=3)
    packets = sensorlogger_packets(played, RATE, 100.0, 2.0, batch_s=0.5, start_epoch_ns=1_700_000_000_000_000_000)
    replay = tmp_path / "sensorlogger.jsonl"
    replay.write_text("".join(p.data.decode() + "\n" for p in packets))
    segments = read_samples(SourceSpec(str(replay)), Bundle.load(bundle), 30.0, EnrollOptions(SourceSpec(str(replay))))
    assert len(segments) == 1 and segments[0].shape == (1500, 6)
    # The simulated clocks are offset by up to 10 ms (+-2 ms jitter), which on a 4 Hz motion is a visible
    # but small error; unconverted m/s2 (x9.8) or unresampled 100 Hz samples (half the period) are not.
    got, want = segments[0][:1400], played[:1400]
    ptp = np.ptp(want, axis=0)
    assert np.all(np.abs(got - want).mean(axis=0) < 0.1 * ptp + 0.01), np.abs(got - want).mean(axis=0)
    for c in np.flatnonzero(ptp > 0.5):
        assert np.corrcoef(got[:, c], want[:, c])[0, 1] > 0.97

    proc = hartool("enroll", str(bundle), "--label", NEW, "--port", str(replay), "--seconds", "30", "--json")
    result = json.loads(proc.stdout)
    # The user sees what the stream would say about the source (stderr), the data stays on stdout.
    assert "aligning 3 sensor clocks (accelerometer, gravity, gyroscope)" in proc.stderr
    # The same 30 s as from the 50 Hz CSV: (1500 - 128) // 16 + 1 windows, not twice as many half-length ones.
    assert result["seconds"] == 30.0 and result["windows"] == 86


def test_labelled_csv_at_another_rate_is_resampled_onto_the_model_grid(bundle: Path, tmp_path: Path) -> None:
    from hartool.core.bundle import Bundle
    from hartool.core.csvformat import format_header, format_row
    from hartool.runtime.enroll import read_labelled

    walk = _activity("WALKING", 20.0, 4)
    t50 = np.arange(len(walk)) / RATE
    t100 = np.arange(2 * len(walk) - 1) / 100.0
    at100 = np.stack([np.interp(t100, t50, walk[:, c]) for c in range(6)], axis=1)
    path = tmp_path / "walk100.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(format_header({"subject": "wearer", "sample_rate_hz": 100.0, "units": "acc=g gyro=rad/s"}))
        for i, row in enumerate(at100):
            fh.write(format_row(t100[i], row, "WALKING"))
    runs = read_labelled(path, Bundle.load(bundle))
    assert [lab for lab, _ in runs] == ["WALKING"]
    np.testing.assert_allclose(runs[0][1], walk, atol=2e-4)  # back on the 50 Hz samples (CSV rounding)


def test_free_orientation_bundle_enrolls_windows_calibrated_like_the_stream(bundle: Path, tmp_path: Path) -> None:
    """An `--orientation free` bundle: the wearer's enrolled windows go through the bundle's input transform,
    turned into the reference frame exactly as `stream` turns its windows once its calibration holds an upright
    reference (here from the wearer's walk before the new activity, on a device tilted on the body)."""
    from hartool.core.bundle import Bundle
    from hartool.core.orientation import manifest_section, rotate, rotation_between
    from hartool.core.transform import InputTransform
    from hartool.runtime.enroll import EnrollOptions, _load_store, enroll, read_samples

    b = Bundle.load(bundle)
    b.manifest["orientation"] = manifest_section("free")
    b.save()
    walk_s = 20.0
    tilt = rotation_between((0.3, 0.8, 0.5), (1.0, 0.0, 0.0))
    played = rotate(np.concatenate([_activity("WALKING", walk_s), _brushing(32.0, seed=4)]), tilt)
    path = _write_csv(tmp_path / "tilted.csv", played)
    samples = read_samples(SourceSpec(str(path)), b, 30.0, EnrollOptions(SourceSpec(str(path))))[0]
    enroll(bundle, EnrollOptions(SourceSpec(str(path)), label=NEW, seconds=30.0))

    stored = _load_store(Bundle.load(bundle)).x  # windows 16 samples apart
    transform = InputTransform(b.manifest)
    stream = transform.stream()  # what StreamClassifier feeds its interpreter, window after window
    window, stride = b.window, b.stride
    starts = range(0, len(samples) - window + 1, stride)
    streamed = [stream(samples[s:s + window])[0].copy() for s in starts]
    assert stream.calibrated  # the walk gave the stream its upright reference
    per_stride = stride // (window // 8)
    after_walk = [k for k, s in enumerate(starts) if s >= walk_s * RATE]
    assert len(after_walk) >= 5
    # Enrollment cuts its windows through the bundle's one input transform (the recording path training uses):
    np.testing.assert_allclose(stored, transform.windows(samples, stride=window // 8), atol=1e-5)
    # ... and that frame is the stream's once it holds a reference: the same gravity direction within a few
    # degrees (the recording path turns a stretch by the rotation it ends with; the stream refines causally).
    spec = b.manifest["preprocessing"]
    mean, std = np.asarray(spec["mean"])[:3], np.asarray(spec["std"])[:3]
    for k in after_walk:
        g_enrolled = (stored[k * per_stride][:, :3] * std + mean).mean(axis=0)
        g_streamed = (streamed[k][:, :3] * std + mean).mean(axis=0)
        cos = g_enrolled @ g_streamed / np.linalg.norm(g_enrolled) / np.linalg.norm(g_streamed)
        assert np.degrees(np.arccos(min(1.0, cos))) < 8.0
    k = after_walk[0]
    uncalibrated = transform.preprocess(samples[starts[k]:starts[k] + window])
    assert np.abs(stored[k * per_stride] - uncalibrated).max() > 0.5  # the tilt was really turned back


def test_a_head_under_the_recall_floor_is_refused_unless_forced(bundle: Path, tmp_path: Path) -> None:
    """Standing taught as a "new" activity: the model's own STANDING takes its windows, so the expected recall
    is under the floor; nothing is saved without --force, and the forced head says what it expected."""
    idle = _write_csv(tmp_path / "idle.csv", _activity("STANDING", 30.0, 4))
    before = (bundle / "manifest.json").read_bytes()
    refused = hartool("enroll", str(bundle), "--label", "IDLE", "--port", str(idle), "--min-recall", "1.0",
                      check=False)
    assert refused.returncode == 1, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    got = re.fullmatch(r"Error: expected recall of IDLE: (\d+) % \(held-out half of the recording\), under "
                       r"--min-recall 100 %: nothing saved; record it longer or more distinctly, or pass --force", last)
    assert got is not None, refused.stderr
    assert (bundle / "manifest.json").read_bytes() == before and not list(bundle.glob("head-*.npz"))
    forced = json.loads(hartool("enroll", str(bundle), "--label", "IDLE", "--port", str(idle), "--min-recall", "1.0",
                                "--force", "--json").stdout)
    assert round(forced["expected"]["IDLE"]["recall"] * 100) == int(got.group(1)) < 100
    assert forced["head"]["name"] == "enrolled"
