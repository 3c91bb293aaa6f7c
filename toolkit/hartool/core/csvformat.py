"""The CSV recording format shared by ``hartool record`` (writer) and the ``csv:DIR`` dataset (reader).

One file per session::

    # subject: 3
    # sample_rate_hz: 50
    # units: acc=g gyro=rad/s
    t_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label
    0.000000,0.0123,-0.981,0.1002,0.0012,-0.0004,0.0101,WALKING
    0.020000,...,                                        <- empty label = unlabeled

Leading ``# key: value`` lines are metadata (all optional). ``t_s`` is seconds since the start of the
session, non-decreasing. Accelerations are in g and angular rates in rad/s unless ``# units:`` says
otherwise (``acc=m/s2`` and ``gyro=deg/s`` are converted on read). Labels are activity names; they are
compared in canonical form (upper case, spaces and dashes as underscores), see :func:`canonical_label`.
numpy and the stdlib only: the recorder runs on the edge device.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hartool.core.errors import DataError
from hartool.core.timebase import ACC_UNIT_FACTORS, GYRO_UNIT_FACTORS

CSV_COLUMNS: tuple[str, ...] = ("t_s", "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z", "label")
VALUE_COLUMNS: tuple[str, ...] = CSV_COLUMNS[1:7]
# Unit spellings accepted in ``# units:`` and the factor that turns them into the canonical unit: the
# one table in core/timebase.py, shared with the stream.
_ACC_UNITS = ACC_UNIT_FACTORS
_GYRO_UNITS = GYRO_UNIT_FACTORS

_META_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FORBIDDEN_LABEL_CHARS = set(',"\r\n#')


def canonical_label(name: str) -> str:
    """The form in which labels are compared: ``"walking upstairs"`` -> ``"WALKING_UPSTAIRS"``."""
    return re.sub(r"[\s\-]+", "_", name.strip()).upper()


def format_header(meta: Mapping[str, object] | None = None) -> str:
    """The ``# key: value`` comment lines for ``meta`` (in order) plus the column header, newline-terminated."""
    lines = []
    for key, value in (meta or {}).items():
        text = str(value)
        if not _META_KEY.match(str(key)):
            raise ValueError(f"csv metadata key {key!r} must be an identifier (letters, digits, _)")
        if "\n" in text or "\r" in text:
            raise ValueError(f"csv metadata value for {key!r} must be a single line")
        lines.append(f"# {key}: {text.strip()}")
    lines.append(",".join(CSV_COLUMNS))
    return "\n".join(lines) + "\n"


def format_row(t_s: float, values: Sequence[float], label: str = "") -> str:
    """One data line (newline-terminated): time, the six channel values and the label (may be empty)."""
    if len(values) != len(VALUE_COLUMNS):
        raise ValueError(f"csv row needs {len(VALUE_COLUMNS)} values, got {len(values)}")
    floats = [float(t_s), *(float(v) for v in values)]
    if not all(math.isfinite(v) for v in floats):
        raise ValueError(f"csv row values must be finite, got t_s={t_s} values={list(values)}")
    if _FORBIDDEN_LABEL_CHARS & set(label):
        raise ValueError(f"csv label {label!r} must not contain a comma, quote, '#' or newline")
    # 7 significant digits keep float32 sensor readings exact enough while staying compact.
    return f"{floats[0]:.6f}," + ",".join(f"{v:.7g}" for v in floats[1:]) + f",{label.strip()}\n"


@dataclass(frozen=True, eq=False)
class CsvSession:
    """One parsed CSV file: metadata, time stamps, values in canonical units and per-sample label names."""

    path: Path
    meta: dict[str, str]
    t_s: np.ndarray  # float64 (n,)
    values: np.ndarray  # float32 (n, 6): acc in g, gyro in rad/s
    labels: list[str] = field(default_factory=list)  # canonical names, "" = unlabeled

    def sample_rate_hz(self) -> float:
        """``# sample_rate_hz`` if given, else 1 / median time step."""
        if "sample_rate_hz" in self.meta:
            return _parse_rate(self.meta["sample_rate_hz"], self.path)
        if len(self.t_s) < 2:
            raise DataError(
                f"{self.path}: cannot estimate the sample rate from one sample; add '# sample_rate_hz:'"
            )
        step = float(np.median(np.diff(self.t_s)))
        if step <= 0:
            raise DataError(f"{self.path}: t_s does not advance; add '# sample_rate_hz:'")
        return 1.0 / step


def _parse_rate(text: str, path: Path) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not math.isfinite(rate) or rate <= 0:
        raise DataError(f"{path}: '# sample_rate_hz: {text}' is not a positive number")
    return rate


def _unit_factors(units: str | None, path: Path) -> tuple[float, float]:
    """Parse ``acc=g gyro=rad/s`` into the multipliers to canonical units."""
    acc, gyro = 1.0, 1.0
    if not units:
        return acc, gyro
    for item in units.replace(",", " ").split():
        key, _, unit = item.partition("=")
        key, unit = key.strip().lower(), unit.strip().lower()
        table = {"acc": _ACC_UNITS, "gyro": _GYRO_UNITS}.get(key)
        if table is None or unit not in table:
            raise DataError(f"{path}: unsupported '# units: {units}' (acc=g|m/s2, gyro=rad/s|deg/s)")
        if key == "acc":
            acc = table[unit]
        else:
            gyro = table[unit]
    return acc, gyro


def read_csv_session(path: str | os.PathLike[str]) -> CsvSession:
    """Parse one recording; any malformed content raises :class:`DataError` naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read CSV recording ({exc})") from exc

    meta: dict[str, str] = {}
    header_seen = False
    times: list[float] = []
    rows: list[list[float]] = []
    labels: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{path}:{lineno}"
        if not header_seen:
            if line.startswith("#"):
                key, sep, value = line[1:].partition(":")
                # Free-text comments (no "key:") are allowed and ignored.
                if sep and _META_KEY.match(key.strip()):
                    meta[key.strip()] = value.strip()
                continue
            columns = tuple(c.strip() for c in line.split(","))
            if columns != CSV_COLUMNS:
                raise DataError(f"{where}: expected header '{','.join(CSV_COLUMNS)}', got '{line[:120]}'")
            header_seen = True
            continue
        fields = line.split(",")
        if len(fields) != len(CSV_COLUMNS):
            raise DataError(f"{where}: expected {len(CSV_COLUMNS)} fields, got {len(fields)}")
        try:
            numbers = [float(f) for f in fields[:7]]
        except ValueError as exc:
            raise DataError(f"{where}: not a number ({exc})") from exc
        if not all(math.isfinite(v) for v in numbers):
            raise DataError(f"{where}: non-finite value")
        if times and numbers[0] < times[-1]:
            raise DataError(f"{where}: t_s goes backwards ({numbers[0]} after {times[-1]})")
        times.append(numbers[0])
        rows.append(numbers[1:])
        labels.append(canonical_label(fields[7]))

    if not header_seen:
        raise DataError(f"{path}: no header line '{','.join(CSV_COLUMNS)}'")
    if not rows:
        raise DataError(f"{path}: no samples after the header")
    acc_factor, gyro_factor = _unit_factors(meta.get("units"), path)
    values = np.asarray(rows, dtype=np.float64)
    values[:, :3] *= acc_factor
    values[:, 3:] *= gyro_factor
    return CsvSession(
        path=path,
        meta=meta,
        t_s=np.asarray(times, dtype=np.float64),
        values=values.astype(np.float32),
        labels=labels,
    )
