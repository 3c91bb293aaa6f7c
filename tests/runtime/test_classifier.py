"""StreamClassifier without any port: resampling to the model's grid, gaps, backwards time, smoothing, t_end_s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hartool.core.bundle import Bundle
from hartool.core.orientation import StillBouts
from hartool.core.preprocess import preprocess
from hartool.data import load_dataset, recording_for_subject
from hartool.runtime.artifacts import load_bundle_predictor
from hartool.runtime.classifier import ClassifierOptions, StreamClassifier, parse_smooth
from hartool.runtime.smoothing import DEFAULT_SMOOTHING, smooth_sequence

N = 1000


@pytest.fixture(scope="module")
def x50() -> np.ndarray:
    recs = recording_for_subject(load_dataset("hapt"), 9)
    return np.concatenate([r.values for r in recs])[:N].astype(np.float64)


def _offline(bundle: Path, values: np.ndarray, ends: list[int]) -> np.ndarray:
    b = Bundle.load(bundle)
    _, pred = load_bundle_predictor(b, "tflite-fp32")
    return pred.predict(np.stack([preprocess(values[e - 128 : e].astype(np.float32), b.preprocessing) for e in ends]))


def _clf(bundle: Path, **kw: object) -> StreamClassifier:
    return StreamClassifier(bundle, ClassifierOptions(artifact="tflite-fp32", **kw))  # type: ignore[arg-type]


def test_100hz_device_time_gives_the_50hz_windows(quantized_bundle: Path, x50: np.ndarray) -> None:
    """A 100 Hz stream whose odd samples lie on the 50 Hz signal's lines resamples back to it exactly."""
    t100 = np.arange(2 * N - 1) * 0.01
    x100 = np.empty((2 * N - 1, 6))
    x100[0::2] = x50
    x100[1::2] = (x50[:-1] + x50[1:]) / 2
    clf = _clf(quantized_bundle)
    rows = []
    for k in range(0, len(t100), 33):  # arbitrary batch sizes
        rows += clf.push(1234.5 + t100[k:k + 33], x100[k:k + 33])  # any origin; 100 Hz
    ends = [r.end_sample for r in rows]
    assert ends == [128 + 64 * i for i in range(len(rows))] and len(rows) == (N - 128) // 64 + 1
    np.testing.assert_allclose([r.raw_probs for r in rows], _offline(quantized_bundle, x50, ends), atol=1e-5)
    assert [r.t_end_s for r in rows] == pytest.approx([(e - 1) / 50 for e in ends], abs=1e-9)
    assert clf.counters()["gaps"] == 0 and clf.dropped == 0


def test_without_timestamps_t_end_s_is_index_over_rate(quantized_bundle: Path, x50: np.ndarray) -> None:
    clf = _clf(quantized_bundle)
    rows = clf.push(None, x50[:300])
    assert [(r.end_sample, r.t_end_s) for r in rows] == [(128, 127 / 50), (192, 191 / 50), (256, 255 / 50)]
    np.testing.assert_allclose([r.probs for r in rows], _offline(quantized_bundle, x50, [128, 192, 256]), atol=1e-5)


def test_gap_restarts_windows_and_every_sample_is_accounted(quantized_bundle: Path, x50: np.ndarray) -> None:
    t = np.arange(N) * 0.02
    t[500:] += 2.0  # the device sent nothing for 2 s
    clf = _clf(quantized_bundle)
    rows = clf.push(t, x50)
    c = clf.counters()
    assert c["gaps"] == 1 and c["gap_samples"] == 100 and c["restarts"] == 1
    # 500 samples before the hole: windows end at 128..448, 52 pending are lost at the restart.
    assert [r.end_sample for r in rows][:6] == [128, 192, 256, 320, 384, 448]
    assert rows[6].end_sample == 500 + 128 and rows[6].t_end_s == pytest.approx(12.0 + 127 * 0.02)
    assert clf.dropped == 52 and rows[6].dropped == 52 and rows[5].dropped == 0
    covered = 448 + (rows[-1].end_sample - 500)
    assert c["grid_samples"] == N == covered + c["pending"] + clf.dropped
    # The window right after the hole holds only samples from after it.
    np.testing.assert_allclose(rows[6].raw_probs, _offline(quantized_bundle, x50, [628])[0], atol=1e-5)


def test_backwards_timestamps_are_dropped_and_counted(quantized_bundle: Path, x50: np.ndarray) -> None:
    t = np.arange(400) * 0.02
    t[[100, 250]] = t[[98, 240]]  # steps back of 40 and 200 ms (a jump of over 1 s is a clock restart)
    clf = _clf(quantized_bundle)
    clf.push(t, x50[:400])
    assert clf.counters()["backwards"] == 2 and clf.dropped == 2 and clf.counters()["gaps"] == 0


def test_sensors_on_their_own_clocks(quantized_bundle: Path, x50: np.ndarray) -> None:
    """acc split into two parts (sum = the signal) and gyro, on offset clocks: windows equal the 50 Hz ones."""
    t = np.arange(N) * 0.02
    clf = _clf(quantized_bundle)
    rows = []
    layout = ("accelerometer", "gravity", "gyroscope")
    for k in range(0, N, 50):
        s = slice(k, k + 50)
        rows += clf.push_parts([("accelerometer", (0, 1, 2), t[s], x50[s, :3] - 1.0),
                                ("gravity", (0, 1, 2), t[s], np.ones((len(t[s]), 3))),
                                ("gyroscope", (3, 4, 5), t[s], x50[s, 3:])], layout)
    ends = [r.end_sample for r in rows]
    assert len(rows) == (N - 128) // 64 + 1
    np.testing.assert_allclose([r.raw_probs for r in rows], _offline(quantized_bundle, x50, ends), atol=1e-5)


def test_smoothing_methods_and_raw_probs(quantized_bundle: Path, x50: np.ndarray) -> None:
    raw = _clf(quantized_bundle).push(None, x50)
    rows = _clf(quantized_bundle, smooth="mean:3").push(None, x50)
    raw_p = np.array([r.raw_probs for r in raw])
    np.testing.assert_allclose([r.raw_probs for r in rows], raw_p, atol=1e-6)
    np.testing.assert_allclose(rows[5].probs, raw_p[3:6].mean(axis=0), atol=1e-6)
    assert rows[5].label == rows[5].smoothed[0] and rows[5].to_json()["raw_probs"]
    assert parse_smooth(0) == parse_smooth("1") == "none" and parse_smooth("4") == "mean:4"
    with pytest.raises(ValueError):
        parse_smooth("-1")


def test_look_ahead_smoothing_delivers_every_window_once_in_order(quantized_bundle: Path, x50: np.ndarray) -> None:
    method = "hmm:switch=0.05,floor=0.1,lag=3"
    raw = np.array([r.raw_probs for r in _clf(quantized_bundle).push(None, x50)])
    clf = _clf(quantized_bundle, smooth=method)
    rows = []
    for k in range(0, N, 77):
        rows += clf.push(None, x50[k:k + 77])
    assert len(raw) == 14 and len(rows) == 11 and all(r.lag == 3 for r in rows)  # 3 windows still held
    rows += clf.flush()
    assert [r.window for r in rows] == list(range(14)) and [r.lag for r in rows[11:]] == [2, 1, 0]
    np.testing.assert_allclose([r.probs for r in rows], smooth_sequence(method, raw), atol=1e-6)
    np.testing.assert_allclose([r.raw_probs for r in rows], raw, atol=1e-6)
    assert clf.flush() == [] and rows[0].to_json()["lag"] == 3


def test_the_default_smoother_knows_which_windows_hold_a_still_posture(quantized_bundle: Path,
                                                                        x50: np.ndarray) -> None:
    assert ",still=" in DEFAULT_SMOOTHING
    raw = np.array([r.raw_probs for r in _clf(quantized_bundle).push(None, x50)])
    bouts = StillBouts()
    held = np.array([bouts.push(x50[e - 128:e]) for e in range(128, N + 1, 64)])
    # Subject 9's stream starts with 11 s of unlabelled movement, then stands still: from its second still
    # window on, each window holds the posture.
    assert held.tolist() == [False] * 9 + [True] * 5
    clf = _clf(quantized_bundle, smooth=DEFAULT_SMOOTHING)
    rows = clf.push(None, x50[:500]) + clf.push(None, x50[500:]) + clf.flush()
    want = smooth_sequence(DEFAULT_SMOOTHING, raw, held=held)
    np.testing.assert_allclose([r.probs for r in rows], want, atol=1e-6)
    assert np.abs(want - smooth_sequence(DEFAULT_SMOOTHING, raw)).max() > 1e-3  # the held flags changed them


def test_a_gap_releases_the_held_windows_before_the_new_ones(quantized_bundle: Path, x50: np.ndarray) -> None:
    method = "hmm:switch=0.05,floor=0.1,lag=3"
    t = np.arange(N) * 0.02
    t[500:] += 2.0  # a hole: windows 0-5 before it, 6.. after it
    raw = np.array([r.raw_probs for r in _clf(quantized_bundle).push(t, x50)])
    clf = _clf(quantized_bundle, smooth=method)
    rows = clf.push(t[:600], x50[:600]) + clf.push(t[600:], x50[600:]) + clf.flush()
    assert [r.window for r in rows] == list(range(len(raw))) and clf.counters()["restarts"] == 1
    assert [r.lag for r in rows[:6]] == [3, 3, 3, 2, 1, 0]  # the hole cut the look-ahead of windows 3-5
    # Each side of the hole is smoothed alone: nothing is carried across it.
    np.testing.assert_allclose([r.probs for r in rows[:6]], smooth_sequence(method, raw[:6]), atol=1e-6)
    np.testing.assert_allclose([r.probs for r in rows[6:]], smooth_sequence(method, raw[6:]), atol=1e-6)


def test_free_bundle_marks_windows_before_the_upright_reference(quantized_bundle: Path, tmp_path: Path) -> None:
    """`--orientation free`: windows before the stream holds an upright reference are `calibrated: false` and
    uncertain; once it holds one (from walking, or from the postures seen) they are calibrated."""
    import json
    import shutil

    from hartool.core.orientation import manifest_section

    free = tmp_path / "free"
    shutil.copytree(quantized_bundle, free)
    manifest = json.loads((free / "manifest.json").read_text())
    manifest["orientation"] = manifest_section("free")
    (free / "manifest.json").write_text(json.dumps(manifest))
    recording = recording_for_subject(load_dataset("hapt"), 9)[0]
    lying_from = int(np.argmax(recording.labels == 6))  # HAPT activity 6: LAYING (after standing, sitting)
    assert lying_from > 0
    clf = _clf(free)
    rows = clf.push(None, recording.values.astype(np.float64)) + clf.flush()
    flags = [r.calibrated for r in rows]
    assert flags[0] is False and flags[-1] is True
    first = flags.index(True)
    assert all(not f for f in flags[:first])
    assert all(r.uncertain for r in rows[:first]) and rows[first].to_json()["calibrated"] is True
    assert rows[0].to_json()["calibrated"] is False and rows[0].to_json()["uncertain"] is True
    # Never from the standing still at the start: the earliest lock is the geometry of upright and lying postures.
    assert rows[first].end_sample > lying_from
    # The stream said why the first labels are uncertain, then when and from what it locked.
    messages = clf.pop_messages()
    assert messages[0].startswith("orientation: not calibrated yet: labels are marked uncertain until")
    assert any(m.startswith("orientation: calibration locked from") for m in messages[1:]), messages
