"""Convert what a device sends (m/s², deg/s, raw counts) into the units the bundle's model was trained on."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..core.errors import WireError

STANDARD_GRAVITY = 9.80665
ACC_UNITS = ("g", "m/s2", "raw")
GYRO_UNITS = ("rad/s", "deg/s", "raw")

# Factor from the device unit to the model unit, for each model unit.
_ACC_TO = {"g": {"g": 1.0, "m/s2": 1.0 / STANDARD_GRAVITY}, "m/s2": {"g": STANDARD_GRAVITY, "m/s2": 1.0}}
_GYRO_TO = {"rad/s": {"rad/s": 1.0, "deg/s": math.pi / 180.0}, "deg/s": {"rad/s": 180.0 / math.pi, "deg/s": 1.0}}


def channel_scales(channels: Sequence[dict[str, str]], acc_unit: str = "g", gyro_unit: str = "rad/s",
                   acc_lsb: float | None = None, gyro_lsb: float | None = None) -> np.ndarray:
    """Per-channel multipliers from device units to the manifest's units.

    ``raw`` means integer sensor counts; ``acc_lsb`` is g per count (MPU6050 at ±2 g: 1/16384) and
    ``gyro_lsb`` deg/s per count (MPU6050 at ±250 dps: 1/131).
    """
    scales = np.ones(len(channels), dtype=np.float32)
    for i, ch in enumerate(channels):
        name, unit = ch.get("name", ""), ch.get("unit", "")
        if name.startswith("acc"):
            src, lsb, table, kind = acc_unit, acc_lsb, _ACC_TO, "acc"
            raw_unit = "g"
        elif name.startswith("gyro"):
            src, lsb, table, kind = gyro_unit, gyro_lsb, _GYRO_TO, "gyro"
            raw_unit = "deg/s"
        else:
            continue
        if unit not in table:
            raise WireError(f"bundle channel {name} has unit {unit!r}, which hartool cannot convert to")
        if src == "raw":
            if not lsb:
                raise WireError(f"--{kind}-unit raw needs --{kind}-lsb ({raw_unit} per count)")
            scales[i] = lsb * table[unit][raw_unit]
        else:
            scales[i] = table[unit][src]
    return scales
