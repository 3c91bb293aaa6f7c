"""Sensor Logger's push batches (HTTP POST body or MQTT payload), one JSON document each::

    {"messageId", "sessionId", "deviceId",
     "payload": [{"name": "accelerometer", "time": <epoch ns>, "values": {"x", "y", "z"}}, ...]}

Each sensor has its own clock, so readings come out as :class:`~hartool.wire.batch.SensorPart` s that the
stream aligns onto the model's grid. ``accelerometer`` is without gravity and ``gravity`` comes apart: both
feed the acc channels and are summed after alignment; ``totalacceleration``, where sent, is used instead.
m/s², rad/s, epoch ns. Unknown sensor names are ignored and counted (``unknown_sensors``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from hartool.core.errors import WireError
from hartool.wire.apps.base import XYZ, AppSchema, ModelChannels, Tally
from hartool.wire.batch import DecodedBatch, SensorPart

__all__ = ["SENSORS", "SensorLogger"]

#: The sensors hartool uses, as the app names them.
SENSORS = ("accelerometer", "gravity", "gyroscope")
_ACC = ("accelerometer", "gravity")
_TOTAL = "totalacceleration"
_GYRO = "gyroscope"
# Keys that make a JSON object a Sensor Logger batch, which must then carry a non-empty payload list.
_KEYS = ("payload", "messageId", "sessionId", "deviceId")
# Batches a stream may take to show every sensor the model needs before that is an error.
_LAYOUT_PATIENCE = 5

Readings = dict[str, list[tuple[Any, list[float]]]]


class SensorLogger(AppSchema):
    """Sensor Logger batches on one stream: readings grouped by sensor, the acc source chosen once."""

    name = "sensorlogger"
    time_unit = "ns"
    acc_unit = "m/s2"
    gyro_unit = "rad/s"

    def __init__(self, channels: ModelChannels, tally: Tally, time_unit: str | None = None) -> None:
        super().__init__(channels, tally, time_unit)
        self.layout: tuple[str, ...] = ()  # the parts, fixed once every needed sensor was seen
        self._batches = 0
        self._parts: Readings = {}

    @classmethod
    def claims(cls, doc: dict[str, Any], channel_names: Sequence[str]) -> bool:
        return "payload" in doc

    @classmethod
    def refusal(cls, doc: dict[str, Any]) -> str | None:
        if any(k in doc for k in _KEYS):
            payload = doc.get("payload")
            if not isinstance(payload, list) or not payload:
                return "no payload: a Sensor Logger batch needs a non-empty 'payload' list"
        return None

    def add(self, doc: dict[str, Any]) -> None:
        payload = doc.get("payload")
        if not isinstance(payload, list) or not payload:
            self.tally.bad_batches += 1
            return
        for entry in payload:
            reading = self._reading(entry)
            if reading is not None:
                name, t, vals = reading
                self._parts.setdefault(name, []).append((t, vals))

    def _reading(self, entry: Any) -> tuple[str, Any, list[float]] | None:
        tally = self.tally
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            tally.bad_lines += 1
            return None
        name = entry["name"].lower()
        wanted = (self.channels.acc is not None and name in (*_ACC, _TOTAL)) or (
            self.channels.gyro is not None and name == _GYRO)
        if not wanted:
            tally.unknown_sensors += 1
            tally.unknown_names.add(name)
            return None
        values, t = entry.get("values"), entry.get("time")
        try:
            vals = [float(values[a]) for a in XYZ]
            t = int(t) if isinstance(t, (int, str)) else float(t)
        except (TypeError, KeyError, ValueError):
            tally.bad_lines += 1
            return None
        if not all(np.isfinite(vals)):
            tally.bad_lines += 1
            return None
        return name, t, vals

    def _fix_layout(self, seen: set[str]) -> None:
        """Choose the acc source (total, or accelerometer + gravity) once every needed sensor was seen."""
        self._batches += 1
        need_gyro = [_GYRO] if self.channels.gyro is not None else []
        if self.channels.acc is None:
            acc: list[str] | None = []
        elif _TOTAL in seen:
            acc = [_TOTAL]
        elif set(_ACC) <= seen:
            acc = list(_ACC)
        else:
            acc = None
        if acc is not None and set(need_gyro) <= seen:
            self.layout = (*acc, *need_gyro)
            return
        if self._batches >= _LAYOUT_PATIENCE:
            missing = [n for n in need_gyro if n not in seen]
            if acc is None:
                missing.insert(0, "totalacceleration (or accelerometer and gravity)")
            raise WireError(f"Sensor Logger sends no {' and no '.join(missing)}: enable it in the app "
                            f"(seen: {', '.join(sorted(seen)) or 'nothing'})")

    def batch(self) -> DecodedBatch | None:
        parts, self._parts = self._parts, {}
        if not self.layout and parts:
            self._fix_layout(set(parts))
        if not self.layout:
            return None
        out: list[SensorPart] = []
        for name in self.layout:
            got = parts.get(name)
            if not got:
                continue
            idx = self.channels.gyro if name == _GYRO else self.channels.acc
            assert idx is not None
            t = np.asarray([g[0] for g in got])
            out.append(SensorPart(name, idx, np.asarray([g[1] for g in got], dtype=np.float64), t))
            self.tally.samples += len(got)
        # Readings of an acc source not chosen (accelerometer next to totalacceleration) are not used.
        self.tally.unknown_sensors += sum(len(v) for k, v in parts.items() if k not in self.layout)
        if not out:
            return None
        return DecodedBatch(values=np.zeros((0, len(self.channels.names)), np.float32), t=None, dropped=0,
                            time_unit=self.time_unit, acc_unit=self.acc_unit, gyro_unit=self.gyro_unit,
                            parts=out, layout=self.layout)

    @staticmethod
    def encode(readings: Sequence[tuple[str, int, Sequence[float]]], *, message_id: int, session_id: str,
               device_id: str) -> bytes:
        """One batch as the app POSTs it: ``readings`` are (sensor name, epoch ns, (x, y, z))."""
        payload = [{"name": n, "time": int(t), "values": dict(zip(XYZ, v, strict=True))} for n, t, v in readings]
        msg = {"messageId": message_id, "sessionId": session_id, "deviceId": device_id, "payload": payload}
        return json.dumps(msg, separators=(",", ":")).encode()
