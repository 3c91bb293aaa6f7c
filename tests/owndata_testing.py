"""Synthetic csv:DIR recordings (the `hartool record` format) with named subjects, for the own-data tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hartool.core.csvformat import format_header, format_row

RATE_HZ = 50.0


def activity_signal(label: str, n: int, rng: np.random.Generator, rate_hz: float = RATE_HZ) -> np.ndarray:
    """(n, 6) acc [g] + gyro [rad/s] that a small CNN tells apart: posture sets gravity, walking shakes."""
    t = np.arange(n) / rate_hz
    gravity = {"LAYING": (1.0, 0.0, 0.0), "SITTING": (0.4, 0.0, 0.9)}.get(label, (0.0, 0.0, 1.0))
    values = np.tile(np.asarray([*gravity, 0.0, 0.0, 0.0], dtype=np.float64), (n, 1))
    if label.startswith("WALKING"):
        freq = 2.0 if label == "WALKING" else 1.5
        values[:, 0] += 0.4 * np.sin(2 * np.pi * freq * t)
        values[:, 2] += 0.3 * np.sin(2 * np.pi * 2 * freq * t)
        values[:, 4] += 1.0 * np.sin(2 * np.pi * freq * t)
    values += rng.normal(0.0, 0.02, size=values.shape)
    return values.astype(np.float32)


def write_subject(path: Path, subject: str | None, runs: Sequence[tuple[str, float]], seed: int = 0,
                  rate_hz: float = RATE_HZ, extra_meta: Mapping[str, object] | None = None) -> Path:
    """One recording: ``runs`` of (label, seconds) back to back; label ``""`` = unlabelled."""
    rng = np.random.default_rng(seed)
    meta: dict[str, object] = {}
    if subject is not None:
        meta["subject"] = subject
    meta["sample_rate_hz"] = f"{rate_hz:g}"
    meta.update(extra_meta or {})
    lines = [format_header(meta)]
    k = 0
    for label, seconds in runs:
        n = int(round(seconds * rate_hz))
        for row in activity_signal(label or "STANDING", n, rng, rate_hz).tolist():
            lines.append(format_row(k / rate_hz, row, label))
            k += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return path


def write_csv_dir(root: Path, subjects: Mapping[str, Sequence[tuple[str, float]]], seed: int = 0) -> Path:
    """One file per subject, named after them (``root/<name>.csv``); returns ``root``."""
    for i, (name, runs) in enumerate(subjects.items()):
        write_subject(root / f"{name}.csv", name, runs, seed=seed + i)
    return root


def basic_subjects(names: Sequence[str], seconds: float = 20.0,
                   labels: Sequence[str] = ("WALKING", "SITTING", "LAYING")) -> dict[str, list[tuple[str, float]]]:
    """Every subject does every label for ``seconds``."""
    return {name: [(label, seconds) for label in labels] for name in names}
