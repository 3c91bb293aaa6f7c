"""Device orientation: the reference frame of hartool models and a causal calibration to it.

A model trained with ``--orientation free`` sees every window turned into the reference frame: the frame
in which gravity, while the wearer stands upright, points along ``REFERENCE_GRAVITY`` (the HAPT waist
phone's standing direction). The rotation that gets there is found causally by
:class:`OrientationCalibrator`: the first still period of at least ``still_s`` seconds is taken as
upright standing, and the smallest rotation that brings its mean acceleration onto the reference
is applied to acc and gyro alike from then on. The remaining freedom (a turn about the vertical) is
what training covers by turning windows about the vertical at random.

Until a still period is found, a provisional rotation from the mean acceleration seen so far is used
(mostly right: gravity dominates that mean whatever the wearer does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Unit gravity direction (acc in g) of the HAPT waist-worn phone while the wearer stands upright:
# the mean over the STANDING windows of the 21 UCI training subjects, normalised.
REFERENCE_GRAVITY: tuple[float, float, float] = (0.9863, -0.1613, -0.0334)
ORIENTATIONS = ("fixed", "free")
# A window is still when |acc| varies by less than this (g, sd over the window) and the mean |gyro| is
# below GYRO_STILL (rad/s): HAPT standing windows have a median of 0.004 g and 0.03 rad/s; with these
# thresholds 95 % of the training recordings lock on a standing stretch (the rest on unlabelled stillness).
ACC_STILL_SD = 0.015
GYRO_STILL = 0.1
STILL_S = 3.0


def rotation_between(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """The smallest rotation matrix R with R @ a/|a| == b/|b| (Rodrigues)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        # Opposite vectors: half a turn about any axis perpendicular to a.
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        perp /= np.linalg.norm(perp)
        return 2.0 * np.outer(perp, perp) - np.eye(3)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]]) / s
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


def rotate(values: np.ndarray, rot: np.ndarray, acc: slice = slice(0, 3), gyro: slice = slice(3, 6)) -> np.ndarray:
    """A copy of samples (..., 6) with acc and gyro turned by ``rot`` (the same physical rotation)."""
    out = np.array(values, dtype=np.float32, copy=True)
    out[..., acc] = values[..., acc] @ rot.T
    out[..., gyro] = values[..., gyro] @ rot.T
    return out


class OrientationCalibrator:
    """Causal device-to-body calibration for a stream of windows; ``push`` each window in order.

    ``push(window)`` takes one raw window (T, 6) in model units (acc in g, gyro in rad/s, channels
    acc_x..z, gyro_x..z) and returns it turned into the reference frame. Consecutive windows are
    assumed ``hop`` samples apart (a gap: call :meth:`gap`, which only breaks a still run). Status changes
    (provisional, locked) are queued as one-line messages: :meth:`pop_messages` hands them over for stderr.
    """

    def __init__(self, sample_rate_hz: float, window: int, hop: int, *, still_s: float = STILL_S,
                 reference: Sequence[float] = REFERENCE_GRAVITY) -> None:
        self.sample_rate_hz = float(sample_rate_hz)
        self.window, self.hop = int(window), int(hop)
        self.still_samples = int(round(still_s * self.sample_rate_hz))
        self.reference = np.asarray(reference, dtype=np.float64)
        self.rotation = np.eye(3)
        self.locked = False
        self._windows = 0
        self._acc_sum = np.zeros(3)
        self._run: list[np.ndarray] = []  # mean acc of each window of the current still run
        self._messages: list[str] = []

    def push(self, window: np.ndarray) -> np.ndarray:
        """Turn one raw window into the reference frame (and learn from it while not yet locked)."""
        if not self.locked:
            self._learn(np.asarray(window, dtype=np.float64))
        return rotate(window, self.rotation)

    def gap(self) -> None:
        """The next window does not follow this one: a still run must start again."""
        self._run.clear()

    def pop_messages(self) -> list[str]:
        """Status lines queued since the last call (for stderr)."""
        out, self._messages = self._messages, []
        return out

    def state(self) -> dict[str, Any]:
        """JSON-able status: locked or provisional, and the rotation in use."""
        return {"locked": self.locked, "rotation": self.rotation.round(6).tolist(), "windows": self._windows}

    def _learn(self, w: np.ndarray) -> None:
        acc = w[:, 0:3]
        mean_acc = acc.mean(axis=0)
        self._windows += 1
        self._acc_sum += mean_acc
        still = (np.linalg.norm(acc, axis=1).std() < ACC_STILL_SD
                 and np.linalg.norm(w[:, 3:6], axis=1).mean() < GYRO_STILL)
        self._run = [*self._run, mean_acc] if still else []
        span = self.window + (len(self._run) - 1) * self.hop if self._run else 0
        t_s = (self._windows - 1) * self.hop / self.sample_rate_hz
        if span >= self.still_samples:
            self.rotation = rotation_between(np.mean(self._run, axis=0), self.reference)
            self.locked = True
            start = t_s - (span - self.window) / self.sample_rate_hz
            self._messages.append(
                f"orientation: still for {span / self.sample_rate_hz:.1f} s from {start:.1f} s: taken as upright "
                f"standing, calibration locked (tilt {self._tilt_deg():.0f} deg)")
            return
        if self._windows == 1:
            self._messages.append(
                f"orientation: calibrating - stand still, upright, for {self.still_samples / self.sample_rate_hz:.0f} s "
                "(until then the rotation is provisional)")
        self.rotation = rotation_between(self._acc_sum, self.reference)

    def _tilt_deg(self) -> float:
        return float(np.degrees(np.arccos(np.clip((np.trace(self.rotation) - 1.0) / 2.0, -1.0, 1.0))))


def calibrator_for(manifest: Mapping[str, Any], hop: int | None = None) -> OrientationCalibrator | None:
    """The calibrator a bundle's manifest asks for (``orientation.mode == "free"``), else None."""
    spec = manifest.get("orientation") or {}
    if spec.get("mode") != "free":
        return None
    return OrientationCalibrator(manifest["sample_rate_hz"], manifest["window"], hop or manifest["stride"],
                                 still_s=spec.get("still_s", STILL_S),
                                 reference=spec.get("reference", REFERENCE_GRAVITY))


def manifest_section(mode: str) -> dict[str, Any]:
    """What the manifest records about orientation (read back by :func:`calibrator_for`)."""
    if mode == "fixed":
        return {"mode": "fixed"}
    return {"mode": "free", "reference": list(REFERENCE_GRAVITY), "still_s": STILL_S,
            "acc_still_sd_g": ACC_STILL_SD, "gyro_still_rad_s": GYRO_STILL,
            "calibration": "first still period >= still_s taken as upright standing; rotation about the "
                           "vertical learned by augmentation"}


def calibrate_recording(values: np.ndarray, sample_rate_hz: float, window: int, hop: int) -> np.ndarray:
    """A whole recording turned by the rotation its stream would lock onto (training-time twin of the stream)."""
    cal = OrientationCalibrator(sample_rate_hz, window, hop)
    for start in range(0, values.shape[0] - window + 1, hop):
        cal.push(values[start:start + window])
        if cal.locked:
            break
    return rotate(values, cal.rotation)


def calibrated_dataset(ds: Any, window: int, hop: int) -> Any:
    """A copy of a dataset (``hartool.data.Dataset``) whose recordings are each calibrated as a stream would."""
    recs = [dataclasses.replace(r, values=calibrate_recording(r.values, ds.sample_rate_hz, window, hop))
            for r in ds.recordings]
    return dataclasses.replace(ds, recordings=recs)
