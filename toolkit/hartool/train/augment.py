"""Training-time augmentation of raw IMU windows: random rotations (acc and gyro together) and scaling.

Augmentation works on raw windows in manifest units, before ``preprocess``: a rotation of the device is
a rotation of the raw acc and gyro vectors, not of their standardised values. Batches are drawn by a Keras
``PyDataset`` so every epoch sees fresh rotations; nothing here runs at inference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.preprocess import preprocess

ACC = slice(0, 3)
GYRO = slice(3, 6)


def axis_angle_matrices(axes: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotation matrices (n, 3, 3) about unit ``axes`` (n, 3) by ``angles`` (n,) radians (Rodrigues)."""
    axes = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    x, y, z = axes[:, 0], axes[:, 1], axes[:, 2]
    c, s = np.cos(angles), np.sin(angles)
    t = 1.0 - c
    return np.stack([
        np.stack([c + x * x * t, x * y * t - z * s, x * z * t + y * s], axis=-1),
        np.stack([y * x * t + z * s, c + y * y * t, y * z * t - x * s], axis=-1),
        np.stack([z * x * t - y * s, z * y * t + x * s, c + z * z * t], axis=-1),
    ], axis=1)


def random_rotations(n: int, rng: np.random.Generator, *, max_tilt_deg: float = 0.0,
                     yaw_axis: np.ndarray | None = None, max_yaw_deg: float = 180.0) -> np.ndarray:
    """``n`` random rotations: a turn of up to ``max_yaw_deg`` either way about ``yaw_axis`` (if given), then
    a tilt of at most ``max_tilt_deg`` about a random axis (small placement differences between wearers)."""
    rot = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    if yaw_axis is not None:
        axes = np.broadcast_to(np.asarray(yaw_axis, dtype=np.float64), (n, 3))
        limit = np.deg2rad(min(max_yaw_deg, 180.0))
        rot = axis_angle_matrices(axes, rng.uniform(-limit, limit, n))
    if max_tilt_deg > 0:
        tilt = axis_angle_matrices(rng.normal(size=(n, 3)), np.deg2rad(rng.uniform(0, max_tilt_deg, n)))
        rot = tilt @ rot
    return rot


def upright_axis(x_raw: np.ndarray, max_angle_deg: float = 30.0, candidates: int = 256,
                 rounds: int = 3) -> tuple[np.ndarray, float]:
    """Where gravity points, in the device frame, while the wearer is upright, and the share of windows near it.

    The densest direction of the windows' mean acceleration: of up to ``candidates`` window directions, the
    one with the most windows within ``max_angle_deg``, refined as the mean of those windows. A mean over all
    windows would land between postures (half walking, half lying gives a diagonal, and a turn about a
    diagonal maps one posture onto the other); a turn about a direction windows really cluster on keeps every
    window's angle to that cluster. Computed from the user's own training windows, so a board worn on a wrist
    or an ankle gets its own axis, and a small share says there is no dominant upright posture.
    """
    g = x_raw[..., ACC].mean(axis=1).astype(np.float64)
    g = g[np.linalg.norm(g, axis=1) > 0]
    if g.size == 0:
        raise ValueError("no window has any acceleration: cannot tell where gravity points")
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    cos_max = np.cos(np.deg2rad(max_angle_deg))
    # Evenly spaced windows as candidates: deterministic, and every recording has a say.
    picks = g[np.linspace(0, len(g) - 1, min(candidates, len(g))).astype(int)]
    # One candidate at a time: a (candidates x windows) matrix would grow with the user's hours of data.
    axis = picks[int(np.argmax([np.count_nonzero(g @ p >= cos_max) for p in picks]))]
    for _ in range(rounds):
        near = g[g @ axis >= cos_max]
        if len(near) == 0:  # a refined mean can only drift off a very sparse cluster; keep the last axis
            break
        axis = near.mean(axis=0)
        axis /= np.linalg.norm(axis) or 1.0
    return axis, float(np.mean(g @ axis >= cos_max))


def rotate_windows(x: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Turn raw windows (n, T, 6) by per-window rotations (n, 3, 3): acc and gyro by the same matrix."""
    out = np.array(x, dtype=np.float32, copy=True)
    out[..., ACC] = np.einsum("nij,ntj->nti", rot, x[..., ACC])
    out[..., GYRO] = np.einsum("nij,ntj->nti", rot, x[..., GYRO])
    return out


def augment_windows(x: np.ndarray, rng: np.random.Generator, *, scale: float, max_tilt_deg: float,
                    yaw_axis: np.ndarray | None, max_yaw_deg: float = 180.0) -> np.ndarray:
    """A randomly rotated and scaled copy of raw windows (n, T, 6)."""
    n = x.shape[0]
    if max_tilt_deg > 0 or yaw_axis is not None:
        x = rotate_windows(x, random_rotations(n, rng, max_tilt_deg=max_tilt_deg, yaw_axis=yaw_axis,
                                               max_yaw_deg=max_yaw_deg))
    if scale > 0:
        # One gain per window and sensor: sensors differ in calibration, acc and gyro independently.
        gains = rng.normal(1.0, scale, size=(n, 1, 2)).astype(np.float32)
        x = x * np.repeat(gains, 3, axis=2)
    return x


def one_hot(y: np.ndarray, n_classes: int, smoothing: float = 0.0) -> np.ndarray:
    """Smoothed one-hot targets (label smoothing spreads ``smoothing`` over all classes)."""
    out = np.full((y.shape[0], n_classes), smoothing / n_classes, dtype=np.float32)
    out[np.arange(y.shape[0]), y] += 1.0 - smoothing
    return out


def augmented_batches(x_raw: np.ndarray, y: np.ndarray, spec: Mapping[str, Any], *, n_classes: int,
                      batch_size: int, seed: int, scale: float, max_tilt_deg: float,
                      yaw_axis: np.ndarray | None, smoothing: float, max_yaw_deg: float = 180.0) -> Any:
    """A Keras ``PyDataset`` of shuffled, freshly augmented, preprocessed batches with smoothed targets."""
    import keras

    augment = scale > 0 or max_tilt_deg > 0 or yaw_axis is not None
    # Without augmentation the model input never changes: preprocess once (feature models pay per call).
    fixed = None if augment else preprocess(x_raw, spec)

    class _Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(y))

        def __len__(self) -> int:
            return int(np.ceil(len(y) / batch_size))

        def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
            pick = self.order[idx * batch_size:(idx + 1) * batch_size]
            if fixed is not None:
                return fixed[pick], one_hot(y[pick], n_classes, smoothing)
            xb = augment_windows(x_raw[pick], self.rng, scale=scale, max_tilt_deg=max_tilt_deg, yaw_axis=yaw_axis,
                                 max_yaw_deg=max_yaw_deg)
            return preprocess(xb, spec), one_hot(y[pick], n_classes, smoothing)

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(y))

    return _Batches()
