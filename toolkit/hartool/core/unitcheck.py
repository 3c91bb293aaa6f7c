"""Do the magnitudes of IMU samples fit the units they were read in?

A phone sends m/s² where a board sends g, an Arduino sketch deg/s where a phone sends rad/s; read in the
wrong unit, every number is off by 9.8 or 57 and a model (or a training set) learns garbage without any
error. Physics tells them apart from a second of samples:

* acceleration: the median magnitude is gravity plus motion, ~1 g; ~9.8 "g" is m/s² read as g, ~0.1 "g" is
  g read as m/s²;
* angular rate: no wrist or phone turns faster than ~20 rad/s (1150 deg/s), and at rest a gyro reads a few
  deg/s at most: a larger "rad/s" is deg/s read as rad/s; a body that moves (acceleration varies) but turns
  under 0.1 rad/s is rad/s read as deg/s.

One home for the check: the ingest stage (`stream`, `record`, `enroll`) and `data info` both call
:func:`unit_doubts`. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CHECK_SAMPLES", "UnitDoubt", "stored_unit_doubts", "unit_doubts"]

CHECK_SAMPLES = 50  # samples judged (1 s at 50 Hz): enough for a median and the 95th percentile
G = 9.80665
_ACC_AS_MS2 = (7.0, 13.0)  # median |acc| in "g" when m/s² were read as g
_ACC_AS_G = (0.07, 0.13)  # median |acc| in "g" when g were read as m/s²
_GYRO_MAX_RAD = 20.0  # p95 |gyro| beyond what a body does: deg/s read as rad/s
_GYRO_REST_RAD = 0.5  # median |gyro| at rest beyond gyro noise and bias: deg/s read as rad/s
_GYRO_MOVING_MIN_RAD = 0.1  # p95 |gyro| of a moving body at least this: below it, rad/s read as deg/s
_REST_STD_G, _MOVING_STD_G = 0.02, 0.1  # spread of |acc| at rest / in motion

_NAMES = {"acc": ("acceleration", "acc"), "gyro": ("angular rate", "gyro")}


@dataclass(frozen=True)
class UnitDoubt:
    """Values of ``quantity`` ("acc"/"gyro") read as ``read_as`` look like ``looks_like``; ``evidence``
    is the statistic that says so, in the units the values were sent in."""

    quantity: str
    read_as: str
    looks_like: str
    evidence: str

    def advice(self) -> str:
        """One line naming the option to pass: the likely unit, or a confirmation of the given one."""
        what, flag = _NAMES[self.quantity]
        return (f"{what} looks like {self.looks_like} ({self.evidence}): pass --{flag}-unit {self.looks_like}, "
                f"or --{flag}-unit {self.read_as} --units-confirmed")

    def contradiction(self) -> str:
        """For a stored file: its values contradict the unit its header names."""
        what, flag = _NAMES[self.quantity]
        return f"{what} looks like {self.looks_like} ({self.evidence}) but '# units:' says {flag}={self.read_as}"


def unit_doubts(acc_g: np.ndarray, gyro_rad: np.ndarray | None, acc_unit: str | None = "g",
                gyro_unit: str | None = "rad/s") -> list[UnitDoubt]:
    """Doubts about samples already converted (acc (n, 3) in g, gyro (n, 3) in rad/s or None) from the units
    they were read as (``acc_unit``/``gyro_unit``; None or "raw": not judged)."""
    out: list[UnitDoubt] = []
    acc_g = np.asarray(acc_g, dtype=np.float64)
    if not len(acc_g):
        return out
    mag = np.linalg.norm(acc_g, axis=1)
    med = float(np.median(mag))
    if acc_unit == "g" and _ACC_AS_MS2[0] < med < _ACC_AS_MS2[1]:
        out.append(UnitDoubt("acc", "g", "m/s2", f"median |acc| {med:.1f}"))
    elif acc_unit == "m/s2" and _ACC_AS_G[0] < med < _ACC_AS_G[1]:
        out.append(UnitDoubt("acc", "m/s2", "g", f"median |acc| {med * G:.2f}"))
    if gyro_rad is None or gyro_unit not in ("rad/s", "deg/s") or out:
        return out  # (with a wrong acceleration unit, "at rest" and "moving" cannot be told)
    spread = float(np.std(mag))
    w = np.linalg.norm(np.asarray(gyro_rad, dtype=np.float64), axis=1)
    p95, w_med = float(np.percentile(w, 95)), float(np.median(w))
    if gyro_unit == "rad/s" and (p95 > _GYRO_MAX_RAD or (spread < _REST_STD_G and w_med > _GYRO_REST_RAD)):
        out.append(UnitDoubt("gyro", "rad/s", "deg/s", f"median |gyro| {w_med:.1f}, 95th percentile {p95:.1f}"))
    elif gyro_unit == "deg/s" and spread > _MOVING_STD_G and p95 < _GYRO_MOVING_MIN_RAD:
        out.append(UnitDoubt("gyro", "deg/s", "rad/s",
                             f"95th percentile |gyro| {np.degrees(p95):.2f} while |acc| varies by {spread:.2f} g"))
    return out


def stored_unit_doubts(acc_g: np.ndarray, gyro_rad: np.ndarray) -> list[UnitDoubt]:
    """Doubts about a stored recording already converted by its header's units (acc in g, gyro in rad/s):
    values that fit neither header unit, judged as if the header named each of them in turn."""
    return unit_doubts(acc_g, gyro_rad, "g", "rad/s") + unit_doubts(acc_g, gyro_rad, "m/s2", "deg/s")
