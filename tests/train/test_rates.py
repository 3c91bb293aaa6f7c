"""`--arch features` at 10, 25, 50 and 100 Hz: bands follow the rate up to Nyquist, the bundle trains on synthetic
csv:DIR data at each rate, quantizes, and streams its own recording through `hartool stream` with every window
classified by the same numpy features the device computes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hartool.core.features import DEFAULT_BAND_EDGES_HZ, band_edges_for, raw_features
from hartool_testing import hartool
from owndata_testing import write_subject

LABELS = ("WALKING", "SITTING", "LAYING")


@pytest.mark.parametrize(("rate", "window"), [(10, 26), (10, 5), (25, 64), (50, 128), (100, 256), (200, 512),
                                              (52, 133), (104, 266)])
def test_bands_reach_nyquist_and_none_is_empty(rate: float, window: int) -> None:
    edges = band_edges_for(rate, window)
    assert edges[0] == 0.0 and edges[-1] == rate / 2 and list(edges) == sorted(set(edges))
    freqs = np.fft.rfftfreq(window, 1.0 / rate)
    for lo, hi in zip(edges[:-2], edges[1:-1], strict=True):
        assert np.count_nonzero((freqs >= lo) & (freqs < hi)) >= 1, (lo, hi)
    assert np.count_nonzero(freqs >= edges[-2]) >= 1
    feats = raw_features(np.zeros((2, window, 6), np.float32), rate, edges)
    assert feats.shape == (2, 6 * (5 + len(edges) - 1)) and np.isfinite(feats).all()


def test_hapt_bands_are_unchanged() -> None:
    assert band_edges_for(50.0, 128) == DEFAULT_BAND_EDGES_HZ


@pytest.mark.parametrize("rate", [10, 25, 50, 100])  # issue 24 asks for each of these rates
def test_features_train_and_stream_at_the_rate(tmp_path: Path, rate: int) -> None:
    data = tmp_path / "data"
    for i, name in enumerate(("ann", "ben", "cat")):
        write_subject(data / f"{name}.csv", name, [(label, 15.0) for label in LABELS], seed=i, rate_hz=rate)
    bundle = tmp_path / "bundle"
    hartool("train", "--dataset", f"csv:{data}", "--arch", "features", "--test-subjects", "cat", "--epochs", "8",
            "--quiet", "--out", str(bundle))
    manifest = json.loads((bundle / "manifest.json").read_text())
    window, stride = manifest["window"], manifest["stride"]
    assert (window, stride) == (int(round(2.56 * rate)), int(round(1.28 * rate)))
    spec = manifest["preprocessing"]
    assert spec["band_edges_hz"] == list(band_edges_for(rate, window)) and spec["band_edges_hz"][-1] == rate / 2
    assert manifest["metrics"]["test"]["accuracy"] >= 0.9
    hartool("quantize", str(bundle), "--formats", "tflite", "--modes", "int8", "--calibration-windows", "16")
    # The test person's own recording, replayed: every window classified, almost all correctly.
    replay = data / "cat.csv"
    rows = [json.loads(line) for line in hartool("stream", str(bundle), "--port", str(replay), "--jsonl",
                                                   "--smooth", "none").stdout.splitlines()]
    n = int(round(15.0 * rate)) * len(LABELS)
    assert len(rows) == (n - window) // stride + 1
    seg = int(round(15.0 * rate))
    truth = [LABELS[min((r["window"] * stride + window - 1) // seg, 2)] for r in rows]
    pure = [(r["label"], t) for r, t in zip(rows, truth, strict=True)
            if (r["window"] * stride) // seg == (r["window"] * stride + window - 1) // seg]
    assert np.mean([p == t for p, t in pure]) >= 0.9
