"""Statistical and spectral features of a window: the classic HAR pipeline, in numpy, for training and the device.

Per channel: mean, standard deviation, minimum, maximum, RMS and the log power in frequency bands of the
mean-removed signal, up to Nyquist (:func:`band_edges_for` the rate and window; HAPT: 9 bands, 14 x C features,
84 for the 6 IMU channels). Everything is computed from the one
window alone, so a live stream reproduces it exactly. The bundle's preprocessing spec of type
``"features"`` holds the band edges and the per-feature standardisation; :func:`hartool.core.preprocess.preprocess`
dispatches here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import BundleError
from .standardize import standardize

FEATURES_TYPE = "features"
STATS = ("mean", "std", "min", "max", "rms")
# Band edges in Hz: fine at low frequencies, where gait (1-3 Hz) and posture changes live. HAPT's 128-sample
# windows at 50 Hz use exactly these (the last band runs to Nyquist, 25 Hz).
DEFAULT_BAND_EDGES_HZ = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 25.0)
# The edges a window at any rate draws from: those below its Nyquist frequency, then Nyquist itself.
_EDGE_LADDER_HZ = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 25.0, 50.0, 100.0)


def feature_count(channels: int, band_edges_hz: tuple[float, ...] | list[float] = DEFAULT_BAND_EDGES_HZ) -> int:
    return channels * (len(STATS) + len(band_edges_hz) - 1)


def band_edges_for(rate_hz: float, window: int) -> tuple[float, ...]:
    """Band edges for ``window``-sample windows at ``rate_hz``: the ladder up to Nyquist, every band holding a bin.

    A band narrower than the FFT's bin spacing (``rate / window``) would be empty: it is merged into the band
    below it. 50 Hz and 128 samples give :data:`DEFAULT_BAND_EDGES_HZ`; 10 Hz and 26 samples give 7 bands up
    to 5 Hz; 100 Hz and 256 samples 10 bands up to 50 Hz.
    """
    nyquist = rate_hz / 2.0
    freqs = np.fft.rfftfreq(int(window), d=1.0 / rate_hz)
    edges = [0.0]
    for edge in (e for e in _EDGE_LADDER_HZ[1:] if e < nyquist):
        # Keep an edge only if the band it closes holds a bin (edges are band starts in _band_starts).
        if np.count_nonzero((freqs >= edges[-1]) & (freqs < edge)) and np.count_nonzero(freqs >= edge):
            edges.append(float(edge))
    return (*edges, float(nyquist))


def _band_starts(window: int, rate_hz: float, edges: tuple[float, ...] | list[float]) -> np.ndarray:
    """First rfft bin of each band (bands are contiguous bin ranges; the last one runs to Nyquist)."""
    freqs = np.fft.rfftfreq(window, d=1.0 / rate_hz)
    starts = np.searchsorted(freqs, np.asarray(edges[:-1], dtype=np.float64), side="left")
    ends = np.append(starts[1:], freqs.size)
    if (ends <= starts).any():
        raise BundleError(f"a frequency band between {list(edges)} Hz holds no FFT bin of a {window}-sample "
                          f"window at {rate_hz:g} Hz; use wider bands")
    return starts


def raw_features(x: np.ndarray, rate_hz: float,
                 band_edges_hz: tuple[float, ...] | list[float] = DEFAULT_BAND_EDGES_HZ) -> np.ndarray:
    """Unscaled features of windows ``(..., window, C)`` -> ``(..., (5 + bands) * C)`` float32, grouped by feature."""
    x = np.asarray(x, dtype=np.float32)
    window = x.shape[-2]
    mean = x.mean(axis=-2)
    centred = x - mean[..., None, :]
    std = np.sqrt((centred**2).mean(axis=-2))
    rms = np.sqrt((x**2).mean(axis=-2))
    spectrum = np.abs(np.fft.rfft(centred, axis=-2)) ** 2 / window  # (..., bins, C)
    bands = np.add.reduceat(spectrum, _band_starts(window, rate_hz, band_edges_hz), axis=-2)
    # log compresses the many decades between a still posture and running; the offset keeps silence finite.
    log_bands = np.log(bands + 1e-6)
    parts = [mean, std, x.min(axis=-2), x.max(axis=-2), rms]
    stacked = np.concatenate([p[..., None, :] for p in parts] + [log_bands], axis=-2)  # (..., 5 + bands, C)
    return stacked.reshape(*stacked.shape[:-2], -1).astype(np.float32)


def fit_feature_preprocessing(x: np.ndarray, rate_hz: float,
                              band_edges_hz: tuple[float, ...] | None = None) -> dict[str, Any]:
    """The ``features`` preprocessing spec: band edges (default: :func:`band_edges_for` the windows' rate and
    length) plus mean/std of every feature over training windows. The device computes the same from the spec."""
    if band_edges_hz is None:
        band_edges_hz = band_edges_for(rate_hz, x.shape[-2])
    feats = raw_features(x, rate_hz, band_edges_hz).astype(np.float64)
    std = feats.std(axis=0)
    return {
        "type": FEATURES_TYPE,
        "rate_hz": float(rate_hz),
        "band_edges_hz": [float(v) for v in band_edges_hz],
        "channels": int(x.shape[-1]),
        "n_features": int(feats.shape[-1]),
        "mean": [float(v) for v in feats.mean(axis=0)],
        "std": [float(v) if v > 1e-8 else 1.0 for v in std],
    }


def preprocess_features(x: np.ndarray, spec: Mapping[str, Any], out: np.ndarray | None = None) -> np.ndarray:
    """Windows ``(..., window, C)`` in manifest units -> standardised feature vectors ``(..., n_features)``."""
    if x.shape[-1] != spec["channels"]:
        raise BundleError(f"window has {x.shape[-1]} channels, the feature spec expects {spec['channels']}")
    feats = raw_features(x, spec["rate_hz"], spec["band_edges_hz"])
    return standardize(feats, spec["mean"], spec["std"], "features", out)


def model_input_shape(spec: Mapping[str, Any], window: int, channels: int) -> tuple[int, ...]:
    """Shape of one model input (without batch) for a preprocessing spec: features or the raw window."""
    if spec.get("type") == FEATURES_TYPE:
        return (int(spec["n_features"]),)
    return (int(window), int(channels))
