"""HyperIMU's JSON packets: ``{"op": "hyperimu", "Timestamp": <epoch ms>, "Accelerometer": [x, y, z],
"Gyroscope": [x, y, z], ...}`` in m/s² and rad/s. Other sensors (magnetometer, ...) are ignored and counted.

(HyperIMU's CSV mode is plain text lines, read by :class:`hartool.wire.text.TextDecoder`.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from hartool.wire.apps.base import RowSchema

__all__ = ["HyperImu"]


class HyperImu(RowSchema):
    """One HyperIMU JSON packet per sample, on the phone's epoch-millisecond clock."""

    name = "hyperimu"
    time_unit = "ms"
    acc_unit = "m/s2"
    gyro_unit = "rad/s"

    @classmethod
    def claims(cls, doc: dict[str, Any], channel_names: Sequence[str]) -> bool:
        keys = {k.lower() for k in doc if isinstance(k, str)}
        return doc.get("op") == "hyperimu" or ("timestamp" in keys and any("accelerometer" in k for k in keys))

    def row(self, doc: dict[str, Any]) -> tuple[Any, np.ndarray] | None:
        acc_idx, gyro_idx = self.channels.acc, self.channels.gyro
        row = np.zeros(len(self.channels.names), dtype=np.float64)
        have_acc = have_gyro = False
        t = None
        for key, value in doc.items():
            low = key.lower() if isinstance(key, str) else ""
            if low == "timestamp":
                t = value
            elif low == "op":
                continue
            elif "accelerometer" in low and "uncalibrated" not in low and "linear" not in low and acc_idx is not None:
                have_acc = _put(row, acc_idx, value)
            elif "gyroscope" in low and "uncalibrated" not in low and gyro_idx is not None:
                have_gyro = _put(row, gyro_idx, value)
            else:
                self.tally.unknown_sensors += 1
                self.tally.unknown_names.add(str(key))
        if (acc_idx is not None and not have_acc) or (gyro_idx is not None and not have_gyro):
            return None
        return t, row

    @staticmethod
    def encode(stamp_ms: int, acc: Sequence[float], gyro: Sequence[float], mag: Sequence[float]) -> bytes:
        """One packet as the app writes it (compact JSON, one line)."""
        doc = {"op": "hyperimu", "Timestamp": int(stamp_ms), "Accelerometer": [round(v, 5) for v in acc],
               "Gyroscope": [round(v, 5) for v in gyro], "Magnetometer": [round(v, 3) for v in mag]}
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def _put(row: np.ndarray, idx: tuple[int, ...], value: Any) -> bool:
    try:
        vals = [float(v) for v in value][:3]
    except (TypeError, ValueError):
        return False
    if len(vals) != 3 or not np.isfinite(vals).all():
        return False
    row[list(idx)] = vals
    return True
