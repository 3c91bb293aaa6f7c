"""Window features (--arch features): known values on synthetic signals; one code path for batches and single windows."""

from __future__ import annotations

import numpy as np
import pytest

from hartool.core.errors import BundleError
from hartool.core.features import (
    DEFAULT_BAND_EDGES_HZ,
    feature_count,
    fit_feature_preprocessing,
    model_input_shape,
    raw_features,
)
from hartool.core.preprocess import preprocess


def sine_window(freq_hz: float, rate_hz: float = 50.0, n: int = 128, offset: float = 1.0) -> np.ndarray:
    t = np.arange(n) / rate_hz
    x = np.zeros((n, 6), dtype=np.float32)
    x[:, 0] = offset + np.sin(2 * np.pi * freq_hz * t)
    x[:, 3] = -0.5  # a constant channel
    return x


def test_statistics_and_band_of_a_sine() -> None:
    # 6 whole cycles in the window (2.34 Hz), so mean and std are exact.
    f = raw_features(sine_window(6 * 50 / 128), 50.0).reshape(14, 6)  # rows: mean, std, min, max, rms, 9 bands
    assert feature_count(6) == 84
    assert f[0, 0] == pytest.approx(1.0, abs=0.02) and f[0, 3] == pytest.approx(-0.5)
    assert f[1, 0] == pytest.approx(np.sqrt(0.5), abs=0.02) and f[1, 3] == pytest.approx(0.0, abs=1e-6)
    assert f[2, 0] == pytest.approx(0.0, abs=0.01) and f[3, 0] == pytest.approx(2.0, abs=0.01)
    assert f[4, 0] == pytest.approx(np.sqrt(1.5), abs=0.02) and f[4, 3] == pytest.approx(0.5)
    bands = f[5:, 0]
    # 2.34 Hz lies in the 2-3 Hz band (the 5th of 0, .5, 1, 1.5, 2, 3, ...): it holds nearly all the power.
    assert int(np.argmax(bands)) == list(DEFAULT_BAND_EDGES_HZ).index(2.0)
    assert bands.max() - np.sort(bands)[-2] > 3.0  # > e^3 times the next band
    assert (f[5:, 3] == pytest.approx(np.log(1e-6), abs=1e-3))  # a constant channel has no power


def test_preprocess_dispatches_and_batches_match_single_windows() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 128, 6)).astype(np.float32)
    spec = fit_feature_preprocessing(x, 50.0)
    batch = preprocess(x, spec)
    assert batch.shape == (40, 84) and spec["n_features"] == 84
    np.testing.assert_allclose(batch.mean(axis=0), 0.0, atol=1e-4)
    single = np.empty(84, dtype=np.float32)
    out = preprocess(x[7], spec, out=single)
    assert out is single
    np.testing.assert_allclose(single, batch[7], atol=1e-5)
    assert model_input_shape(spec, 128, 6) == (84,)
    assert model_input_shape({"type": "standardize"}, 128, 6) == (128, 6)
    with pytest.raises(BundleError, match="channels"):
        preprocess(x[..., :3], spec)


def test_bands_too_narrow_for_the_window_are_refused() -> None:
    with pytest.raises(BundleError, match="holds no FFT bin"):
        raw_features(np.zeros((16, 6), dtype=np.float32), 50.0, (0.0, 0.1, 0.2, 25.0))
