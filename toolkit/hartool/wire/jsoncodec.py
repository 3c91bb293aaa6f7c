"""JSON decoders for what phone apps and scripts really send: one JSON document per line.

Schemas, recognised per line (a stream keeps the schema of its first good line):

* **Sensor Logger** push (HTTP POST body or MQTT payload): ``{"messageId", "sessionId", "deviceId",
  "payload": [{"name": "accelerometer", "time": <epoch ns>, "values": {"x", "y", "z"}}, ...]}``. Each
  sensor has its own clock, so readings come out as :class:`~hartool.wire.codec.SensorPart` s that the
  stream aligns onto the model's grid. ``accelerometer`` is without gravity and ``gravity`` comes apart:
  both feed the acc channels and are summed after alignment; ``totalacceleration``, where sent, is used
  instead. m/s², rad/s, epoch ns. Unknown sensor names are ignored and counted (``unknown_sensors``).
* **HyperIMU** JSON packets: ``{"op": "hyperimu", "Timestamp": <epoch ms>, "Accelerometer": [x, y, z],
  "Gyroscope": [x, y, z], ...}`` (m/s², rad/s); other sensors are ignored and counted.
* **Named fields**, for any other sender: ``{"t": .., "acc_x": .., ...}`` with the model's channel names
  (a list of such objects on one line is fine); ``t`` is optional and its unit is ``--time-unit``'s, the
  values are in the units the user names (``--acc-unit``, ``--gyro-unit``).

Counters: ``lines``, ``bad_lines`` (not JSON, or no schema fits), ``bad_batches`` (a Sensor Logger object
without a usable payload), ``samples`` (readings), ``unknown_sensors`` (readings of sensors the model does
not use), ``dropped`` (always 0: a JSON line is a batch, not a sample).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from hartool.core.errors import WireError
from hartool.wire.codec import DEFAULT_CHANNEL_NAMES, DecodedBatch, SensorPart

__all__ = ["JsonDecoder", "looks_like_json"]

# Sensor Logger sensor name -> the model channel group it feeds.
_SL_ACC = ("accelerometer", "gravity")
_SL_TOTAL = "totalacceleration"
_SL_GYRO = "gyroscope"
_XYZ = ("x", "y", "z")
# Batches a Sensor Logger stream may take to show every sensor the model needs before that is an error.
_LAYOUT_PATIENCE = 5
_MAX_LINE_BYTES = 4 << 20


def looks_like_json(data: bytes) -> bool:
    """True when a complete line of ``data`` is a JSON object or array (the protocol sniffer's test)."""
    for line in bytes(data).split(b"\n")[:-1] or [bytes(data)]:
        text = line.strip()
        if text[:1] in (b"{", b"["):
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            if isinstance(doc, (dict, list)):
                return True
    return False


def _group(channel_names: Sequence[str], prefix: str) -> tuple[int, ...] | None:
    """Indices of ``prefix_x, _y, _z`` among the model's channels, None when the model lacks them."""
    try:
        return tuple(channel_names.index(f"{prefix}_{a}") for a in _XYZ)
    except ValueError:
        return None


class JsonDecoder:
    """Incremental decoder of JSON lines into :class:`DecodedBatch` (see the module docstring)."""

    def __init__(self, channel_names: Sequence[str] | None = None, *, skip_first_line: bool = False,
                 time_unit: str | None = None) -> None:
        self.channel_names = list(channel_names or DEFAULT_CHANNEL_NAMES)
        self.channels = len(self.channel_names)
        self.time_unit = time_unit
        self.acc_idx = _group(self.channel_names, "acc")
        self.gyro_idx = _group(self.channel_names, "gyro")
        self.schema: str | None = None  # "sensorlogger" | "hyperimu" | "fields"
        self.lines = 0
        self.bad_lines = 0
        self.bad_batches = 0
        self.samples = 0
        self.dropped = 0
        self.unknown_sensors = 0
        self.unknown_names: set[str] = set()
        self.layout: tuple[str, ...] = ()  # Sensor Logger parts, fixed once every needed sensor was seen
        self._sl_batches = 0
        self._skip_first = skip_first_line
        self._buf = bytearray()

    # ------------------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> DecodedBatch | None:
        """Consume bytes; return the samples of the complete lines among them, or None."""
        buf = self._buf
        buf += data
        end = buf.rfind(b"\n")
        if end < 0:
            if len(buf) > _MAX_LINE_BYTES:
                self.lines += 1
                self.bad_lines += 1
                buf.clear()
            return None
        chunk = bytes(buf[:end])
        del buf[: end + 1]
        rows: list[tuple[np.ndarray | None, np.ndarray]] = []
        parts: dict[str, list[tuple[Any, list[float]]]] = {}
        unit: list[str | None] = [None, None, None]  # time, acc, gyro units of the schema seen
        for line in chunk.split(b"\n"):
            text = line.strip()
            if not text:
                continue
            first, self._skip_first = self._skip_first, False
            self.lines += 1
            try:
                doc = json.loads(text)
            except ValueError:
                if not first:  # a live port may start mid-line: the first line is never held against it
                    self.bad_lines += 1
                continue
            self._dispatch(doc, rows, parts, unit)
        return self._batch(rows, parts, unit)

    def _dispatch(self, doc: Any, rows: list, parts: dict, unit: list) -> None:
        docs = doc if isinstance(doc, list) else [doc]
        for item in docs:
            kind = self._schema_of(item)
            if kind is None or (self.schema is not None and kind != self.schema):
                self.bad_lines += 1
                continue
            self.schema = kind
            if kind == "sensorlogger":
                unit[:] = ["ns", "m/s2", "rad/s"]
                self._sensor_logger(item, parts)
            elif kind == "hyperimu":
                unit[:] = ["ms", "m/s2", "rad/s"]
                self._hyperimu(item, rows)
            else:
                unit[0] = self.time_unit
                self._fields(item, rows)

    def _schema_of(self, doc: Any) -> str | None:
        if not isinstance(doc, dict):
            return None
        if "payload" in doc:
            return "sensorlogger"
        keys = {k.lower() for k in doc if isinstance(k, str)}
        if doc.get("op") == "hyperimu" or ("timestamp" in keys and any("accelerometer" in k for k in keys)):
            return "hyperimu"
        if any(c in doc for c in self.channel_names):
            return "fields"
        return None

    # ------------------------------------------------------------------------------------------------
    def _sensor_logger(self, doc: dict, parts: dict[str, list[tuple[Any, list[float]]]]) -> None:
        payload = doc.get("payload")
        if not isinstance(payload, list) or not payload:
            self.bad_batches += 1
            return
        for entry in payload:
            reading = self._sl_reading(entry)
            if reading is None:
                continue
            name, t, vals = reading
            parts.setdefault(name, []).append((t, vals))

    def _sl_reading(self, entry: Any) -> tuple[str, Any, list[float]] | None:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            self.bad_lines += 1
            return None
        name = entry["name"].lower()
        wanted = (self.acc_idx is not None and name in (*_SL_ACC, _SL_TOTAL)) or (
            self.gyro_idx is not None and name == _SL_GYRO)
        if not wanted:
            self.unknown_sensors += 1
            self.unknown_names.add(name)
            return None
        values, t = entry.get("values"), entry.get("time")
        try:
            vals = [float(values[a]) for a in _XYZ]
            t = int(t) if isinstance(t, (int, str)) else float(t)
        except (TypeError, KeyError, ValueError):
            self.bad_lines += 1
            return None
        if not all(np.isfinite(vals)):
            self.bad_lines += 1
            return None
        return name, t, vals

    def _fix_layout(self, seen: set[str]) -> None:
        """Choose the acc source (total, or accelerometer + gravity) once every needed sensor was seen."""
        self._sl_batches += 1
        need_gyro = [_SL_GYRO] if self.gyro_idx is not None else []
        if self.acc_idx is None:
            acc: list[str] | None = []
        elif _SL_TOTAL in seen:
            acc = [_SL_TOTAL]
        elif set(_SL_ACC) <= seen:
            acc = list(_SL_ACC)
        else:
            acc = None
        if acc is not None and set(need_gyro) <= seen:
            self.layout = (*acc, *need_gyro)
            return
        if self._sl_batches >= _LAYOUT_PATIENCE:
            missing = [n for n in need_gyro if n not in seen]
            if acc is None:
                missing.insert(0, "totalacceleration (or accelerometer and gravity)")
            raise WireError(f"Sensor Logger sends no {' and no '.join(missing)}: enable it in the app "
                            f"(seen: {', '.join(sorted(seen)) or 'nothing'})")

    def _parts_batch(self, parts: dict[str, list[tuple[Any, list[float]]]],
                     unit: list[str | None]) -> DecodedBatch | None:
        if not self.layout and parts:
            self._fix_layout(set(parts))
        if not self.layout:
            return None
        out: list[SensorPart] = []
        for name in self.layout:
            got = parts.get(name)
            if not got:
                continue
            idx = self.gyro_idx if name == _SL_GYRO else self.acc_idx
            assert idx is not None
            t = np.asarray([g[0] for g in got])
            out.append(SensorPart(name, idx, np.asarray([g[1] for g in got], dtype=np.float64), t))
            self.samples += len(got)
        # Readings of an acc source not chosen (accelerometer next to totalacceleration) are not used.
        self.unknown_sensors += sum(len(v) for k, v in parts.items() if k not in self.layout)
        if not out:
            return None
        return DecodedBatch(values=np.zeros((0, self.channels), np.float32), t=None, dropped=0,
                            time_unit=unit[0], acc_unit=unit[1], gyro_unit=unit[2], parts=out, layout=self.layout)

    # ------------------------------------------------------------------------------------------------
    def _hyperimu(self, doc: dict, rows: list) -> None:
        row = np.zeros(self.channels, dtype=np.float64)
        have_acc = have_gyro = False
        t = None
        for key, value in doc.items():
            low = key.lower() if isinstance(key, str) else ""
            if low == "timestamp":
                t = value
            elif low == "op":
                continue
            elif "accelerometer" in low and "uncalibrated" not in low and "linear" not in low \
                    and self.acc_idx is not None:
                have_acc = self._put(row, self.acc_idx, value)
            elif "gyroscope" in low and "uncalibrated" not in low and self.gyro_idx is not None:
                have_gyro = self._put(row, self.gyro_idx, value)
            else:
                self.unknown_sensors += 1
                self.unknown_names.add(str(key))
        if (self.acc_idx is not None and not have_acc) or (self.gyro_idx is not None and not have_gyro):
            self.bad_lines += 1
            return
        self._add_row(rows, t, row)

    @staticmethod
    def _put(row: np.ndarray, idx: tuple[int, ...], value: Any) -> bool:
        try:
            vals = [float(v) for v in value][:3]
        except (TypeError, ValueError):
            return False
        if len(vals) != 3 or not np.isfinite(vals).all():
            return False
        row[list(idx)] = vals
        return True

    def _fields(self, doc: dict, rows: list) -> None:
        try:
            row = np.asarray([float(doc[c]) for c in self.channel_names], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            self.bad_lines += 1
            return
        if not np.isfinite(row).all():
            self.bad_lines += 1
            return
        self._add_row(rows, doc.get("t"), row)

    def _add_row(self, rows: list, t: Any, row: np.ndarray) -> None:
        if t is not None:
            try:
                t = int(t) if isinstance(t, int) else float(t)
            except (TypeError, ValueError):
                self.bad_lines += 1
                return
        rows.append((t, row))
        self.samples += 1

    def _batch(self, rows: list, parts: dict, unit: list[str | None]) -> DecodedBatch | None:
        if self.schema == "sensorlogger":
            return self._parts_batch(parts, unit)
        if not rows:
            return None
        values = np.stack([r[1] for r in rows]).astype(np.float32)
        times = [r[0] for r in rows]
        # A stream either stamps every sample or none; a batch with some missing is used without times.
        t = np.asarray(times) if all(x is not None for x in times) else None
        return DecodedBatch(values=values, t=t, dropped=0, time_unit=unit[0], acc_unit=unit[1],
                            gyro_unit=unit[2])
