"""What every decoder returns: :class:`DecodedBatch` (with :class:`SensorPart` for multi-clock apps), the
:class:`DevicePrediction` of a board that classifies by itself, and the ``--columns`` text layout
(:class:`ColumnLayout`, :func:`parse_columns`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hartool.core.errors import WireError

__all__ = ["DEFAULT_CHANNEL_NAMES", "ColumnLayout", "DecodedBatch", "DevicePrediction", "SensorPart", "parse_columns"]

#: The channel order of hartool's 6-axis models (acc in g, gyro in rad/s), used when a caller names none.
DEFAULT_CHANNEL_NAMES: tuple[str, ...] = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


@dataclass
class SensorPart:
    """Readings of one sensor on its own clock (Sensor Logger sends acc, gravity and gyro apart).

    ``channels`` are the model channel indices of ``values``' columns; parts naming the same channels are
    summed after alignment (accelerometer + gravity = the total acceleration the models are trained on).
    """

    name: str
    channels: tuple[int, ...]
    values: np.ndarray  # float (n, len(channels)), in the batch's units
    t: np.ndarray  # (n,) raw device time in the batch's time_unit


@dataclass
class DecodedBatch:
    """Samples decoded by one ``feed()`` call, in arrival order.

    Single-clock sources fill ``values`` (model channel order) and ``t``; multi-clock sources (Sensor
    Logger) fill ``parts`` and ``layout`` (the names of every part the source sends) and leave ``values``
    empty. ``time_unit`` is the unit of the raw times ("s", "ms", "us", "ns"), None when the decoder cannot
    know (text: ``--time-unit`` or auto detection decide). ``acc_unit``/``gyro_unit`` are set when the format
    defines its units (JSON apps); None means "as the user says". ``breaks`` are sample indices before which
    samples were lost (binary sequence gaps): windows must not span them.
    """

    values: np.ndarray  # float32 (n, nch)
    t: np.ndarray | None  # (n,) raw device time, or None when not every sample has one
    dropped: int  # samples known lost before/among these (binary: seq gaps; text: bad lines after detection)
    # time.perf_counter_ns() when the bytes completing the batch were read; set by the reader thread.
    received_ns: int = 0
    time_unit: str | None = None
    acc_unit: str | None = None
    gyro_unit: str | None = None
    breaks: tuple[int, ...] = ()
    parts: list[SensorPart] | None = None
    layout: tuple[str, ...] = ()

    @property
    def t_ms(self) -> np.ndarray | None:
        """Device time in milliseconds (raw text times are returned as sent, the pre-timebase behaviour)."""
        if self.t is None or self.time_unit in (None, "ms"):
            return self.t
        scale = {"s": 1e3, "us": 1e-3, "ns": 1e-6}[self.time_unit]
        return np.asarray(self.t, dtype=np.float64) * scale

    @property
    def samples(self) -> int:
        """Device samples in the batch (for a multi-clock batch: readings of all its sensors)."""
        if self.parts is not None:
            return sum(len(p.t) for p in self.parts)
        return len(self.values)


@dataclass
class DevicePrediction:
    """One window classified on the board (a prediction message, PROTOCOL.md "Prediction messages").

    ``window`` is the board's window counter (u32, wraps), ``label`` the class index it chose, ``counts`` one
    u8 per class (probability = count / 256), ``t_ms`` the device milliseconds when it was sent, if any.
    """

    window: int
    label: int
    counts: tuple[int, ...]
    t_ms: int | None = None
    # time.perf_counter_ns() when the bytes completing the message were read; set by the reader thread.
    received_ns: int = 0

    @property
    def probs(self) -> list[float]:
        return [c / 256.0 for c in self.counts]


@dataclass(frozen=True)
class ColumnLayout:
    """Where the time and each model channel sit in a text line (``--columns``)."""

    names: tuple[str, ...]  # the --columns list as given
    time_col: int | None
    channel_cols: tuple[int, ...]  # one per model channel, in model order

    @property
    def min_fields(self) -> int:
        return len(self.names)


def parse_columns(spec: str, channel_names: Sequence[str]) -> ColumnLayout:
    """Parse ``--columns t,acc_x,...`` against the model's channels; one-line :class:`WireError` when wrong.

    Each field is ``t`` (the timestamp), a model channel name, or ``-`` (ignored); fields past the list are
    ignored. Unknown names, duplicates and channels the model needs but the list misses are errors.
    """
    names = tuple(n.strip() for n in spec.split(","))
    if not spec.strip() or any(not n for n in names):
        raise WireError(f"--columns {spec!r}: empty field name (use '-' for a field to ignore)")
    known = set(channel_names) | {"t", "-"}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise WireError(f"--columns names unknown channel {unknown[0]!r}; the model's channels are "
                        f"{', '.join(channel_names)} (plus 't' for the timestamp and '-' to skip a field)")
    dup = sorted({n for n in names if n != "-" and names.count(n) > 1})
    if dup:
        raise WireError(f"--columns names {dup[0]!r} twice")
    missing = [c for c in channel_names if c not in names]
    if missing:
        raise WireError(f"--columns misses {', '.join(missing)}, which the model needs")
    time_col = names.index("t") if "t" in names else None
    return ColumnLayout(names, time_col, tuple(names.index(c) for c in channel_names))
