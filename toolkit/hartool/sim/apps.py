"""The packets real senders produce from a recording: HyperIMU (CSV/JSON), Sensor Logger (JSON batches), an MCU.

Every builder takes the recording in model units (``values`` (n, 6): acc x/y/z in g, gyro x/y/z in rad/s, at
``src_rate_hz``) and returns a list of :class:`Packet`: the bytes the app sends and ``t_s``, the device time
(s since the recording's first sample) at which it sends them. Device time ``t`` is the recording's time
``t``: a receiver's ``t_end_s`` can be scored against the recording's labels directly.

Formats (see ANCHORS "How phone apps really send"):

* HyperIMU CSV, one line per sample: ``timestamp,acc.x,acc.y,acc.z,gyro.x,gyro.y,gyro.z,mag.x,mag.y,mag.z``
  (epoch ms, m/s², rad/s, µT); one clock for all sensors.
* HyperIMU JSON, one object per line: ``{"op":"hyperimu","Timestamp":ms,"Accelerometer":[x,y,z],
  "Gyroscope":[..],"Magnetometer":[..]}``.
* Sensor Logger: ``{"messageId","sessionId","deviceId","payload":[{"name","time":epoch ns,"values":{x,y,z}}]}``
  with ``accelerometer`` (linear, m/s², no gravity), ``gravity`` (m/s²) and ``gyroscope`` (rad/s), each on its
  own jittery, slightly skewed clock; one batch every ``batch_s``; readings grouped by sensor in a batch.
* MCU text: ``micros,ax,ay,az,gx,gy,gz\\r\\n`` (``micros()`` µs since boot as uint32, g, rad/s), like an
  Arduino sketch printing with ``Serial.println``.

The magnetometer is not in the recording: a constant field (µT) with a little noise stands in for it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import numpy as np

from hartool.sim.signals import STANDARD_GRAVITY, device_clock, sample_at, split_gravity
from hartool.wire.apps.registry import SCHEMAS
from hartool.wire.apps.sensorlogger import SENSORS

__all__ = [
    "Packet",
    "hyperimu_packets",
    "mcu_packets",
    "sensorlogger_packets",
]

_EARTH_FIELD_UT = np.array([22.0, 5.0, -40.0])
_CLOCK_SKEW_STD = 0.002  # phone sensor clocks differ by a few 0.1 %


@dataclass(frozen=True)
class Packet:
    """What a sender writes at device time ``t_s``, and how many samples (sensor readings) it holds."""

    t_s: float
    data: bytes
    samples: int = 1


def _duration(values: np.ndarray, src_rate_hz: float) -> float:
    return (len(values) - 1) / src_rate_hz


def _check(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 6 or len(arr) < 2:
        raise ValueError(f"values must be (n >= 2, 6): acc x/y/z in g, gyro x/y/z in rad/s; got {arr.shape}")
    return arr


def hyperimu_packets(
    values: np.ndarray,
    src_rate_hz: float,
    rate_hz: float = 100.0,
    jitter_ms: float = 2.0,
    *,
    fmt: str = "csv",
    lines_per_packet: int = 1,
    start_epoch_ms: int | None = None,
    seed: int = 0,
) -> list[Packet]:
    """HyperIMU's stream: CSV or JSON lines at ``rate_hz`` on one jittery clock, ``lines_per_packet`` per packet."""
    arr = _check(values)
    if fmt not in ("csv", "json"):
        raise ValueError(f"fmt must be csv or json, got {fmt!r}")
    rng = np.random.default_rng(seed)
    t = device_clock(_duration(arr, src_rate_hz), rate_hz, jitter_ms, rng)
    sampled = sample_at(arr, src_rate_hz, t)
    acc = sampled[:, :3] * STANDARD_GRAVITY
    gyro = sampled[:, 3:]
    mag = _EARTH_FIELD_UT + rng.normal(0.0, 0.3, (len(t), 3))
    epoch0 = int(time.time() * 1000) if start_epoch_ms is None else int(start_epoch_ms)
    stamps = epoch0 + np.round(t * 1000.0).astype(np.int64)
    if fmt == "csv":
        rows = np.column_stack([acc, gyro, mag]).tolist()
        text = [f"{s}," + ",".join(f"{v:.5f}" for v in row) + "\n" for s, row in zip(stamps.tolist(), rows, strict=True)]
    else:
        encode = SCHEMAS["hyperimu"].encode
        text = [encode(s, a, g, m).decode()
                for s, a, g, m in zip(stamps.tolist(), acc.tolist(), gyro.tolist(), mag.tolist(), strict=True)]
    k = max(1, int(lines_per_packet))
    return [
        Packet(float(t[min(i + k, len(t)) - 1]), "".join(text[i : i + k]).encode(), len(text[i : i + k]))
        for i in range(0, len(text), k)
    ]


def _sensor_readings(arr: np.ndarray, src_rate_hz: float, rate_hz: float, jitter_ms: float,
                     rng: np.random.Generator, tau_s: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (times s, (n, 3) values in m/s² or rad/s), each sensor on a clock of its own."""
    linear, gravity = split_gravity(arr[:, :3] * STANDARD_GRAVITY, src_rate_hz, tau_s)
    sources = {"accelerometer": linear, "gravity": gravity, "gyroscope": arr[:, 3:]}
    period = 1.0 / rate_hz
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in SENSORS:
        t = device_clock(_duration(arr, src_rate_hz), rate_hz, jitter_ms, rng,
                         offset_s=float(rng.uniform(0.0, period)), skew=float(rng.normal(0.0, _CLOCK_SKEW_STD)))
        out[name] = (t, sample_at(sources[name], src_rate_hz, t))
    return out


def sensorlogger_packets(
    values: np.ndarray,
    src_rate_hz: float,
    rate_hz: float = 100.0,
    jitter_ms: float = 2.0,
    *,
    batch_s: float = 0.2,
    start_epoch_ns: int | None = None,
    device_id: str = "hartool-sim",
    session_id: str | None = None,
    gravity_tau_s: float = 0.5,
    seed: int = 0,
) -> list[Packet]:
    """Sensor Logger's JSON batches (one every ``batch_s``), acc without gravity, gravity and gyro apart."""
    arr = _check(values)
    if not batch_s > 0:
        raise ValueError(f"batch_s must be > 0, got {batch_s}")
    rng = np.random.default_rng(seed)
    readings = _sensor_readings(arr, src_rate_hz, rate_hz, jitter_ms, rng, gravity_tau_s)
    epoch0 = time.time_ns() if start_epoch_ns is None else int(start_epoch_ns)
    session = session_id or str(uuid.UUID(int=int(rng.integers(0, 2**63))))
    n_batches = int(_duration(arr, src_rate_hz) // batch_s) + 1
    per_batch: list[list[tuple[str, int, list[float]]]] = [[] for _ in range(n_batches)]
    for name, (t, vals) in readings.items():
        ns = epoch0 + np.round(t * 1e9).astype(np.int64)
        which = np.minimum((t // batch_s).astype(np.int64), n_batches - 1)
        for b, stamp, xyz in zip(which.tolist(), ns.tolist(), vals.tolist(), strict=True):
            per_batch[b].append((name, stamp, xyz))
    encode = SCHEMAS["sensorlogger"].encode
    packets = []
    for b, readings_b in enumerate(per_batch):
        if not readings_b:
            continue
        data = encode(readings_b, message_id=len(packets), session_id=session, device_id=device_id)
        send_t = min((b + 1) * batch_s, _duration(arr, src_rate_hz))
        packets.append(Packet(send_t, data, len(readings_b)))
    return packets


def mcu_packets(
    values: np.ndarray,
    src_rate_hz: float,
    rate_hz: float = 104.0,
    jitter_ms: float = 0.0,
    *,
    boot_us: int = 3_000_000,
    decimals: int = 4,
    seed: int = 0,
) -> list[Packet]:
    """An MCU's text lines ``micros,6 values`` (g, rad/s) at ``rate_hz`` (104: LSM6DS3), one per packet."""
    arr = _check(values)
    rng = np.random.default_rng(seed)
    t = device_clock(_duration(arr, src_rate_hz), rate_hz, jitter_ms, rng)
    sampled = sample_at(arr, src_rate_hz, t)
    micros = (int(boot_us) + np.round(t * 1e6).astype(np.int64)) & 0xFFFFFFFF
    fmt = "%d," + ",".join([f"%.{int(decimals)}f"] * 6) + "\r\n"
    return [
        Packet(float(ti), (fmt % (us, *row)).encode())
        for ti, us, row in zip(t.tolist(), micros.tolist(), sampled.tolist(), strict=True)
    ]
