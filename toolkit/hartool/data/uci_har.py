"""The standard "UCI HAR Dataset" folder, turned back into continuous recordings from its overlapping windows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hartool.core.errors import DataError
from hartool.data.recordings import (
    BASIC_ACTIVITIES,
    UCI_HAR_LABEL_NAMES,
    UCI_HAR_TEST_SUBJECTS,
    Dataset,
    Recording,
    default_channels,
)

UCI_HAR_SAMPLE_RATE_HZ = 50.0
# Raw signals in our channel order: total_acc is in g (gravity included), body_gyro in rad/s.
UCI_HAR_SIGNALS: tuple[str, ...] = (
    "total_acc_x",
    "total_acc_y",
    "total_acc_z",
    "body_gyro_x",
    "body_gyro_y",
    "body_gyro_z",
)
PARTS: tuple[str, ...] = ("train", "test")
# Overlapping halves of consecutive windows are the same samples printed the same way; this only absorbs
# re-serialised copies of the files.
_OVERLAP_ATOL = 1e-6


def _resolve_root(path: Path) -> Path:
    """Accept the dataset folder itself or a folder that contains ``UCI HAR Dataset``."""
    if (path / "train").is_dir() or (path / "test").is_dir():
        return path
    nested = path / "UCI HAR Dataset"
    if (nested / "train").is_dir() or (nested / "test").is_dir():
        return nested
    raise DataError(f"uci-har:{path}: no train/ or test/ folder (expected the 'UCI HAR Dataset' folder)")


def _load_matrix(path: Path, dtype: type, ndim: int) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: missing UCI HAR file")
    try:
        arr = np.loadtxt(path, dtype=dtype, ndmin=ndim)
    except ValueError as exc:
        raise DataError(f"{path}: not a whitespace-separated numeric table ({exc})") from exc
    if ndim == 1 and arr.ndim != 1:
        raise DataError(f"{path}: expected one value per line, got {arr.shape[1]} columns")
    return arr


def _load_part(root: Path, part: str) -> list[Recording]:
    folder = root / part
    y = _load_matrix(folder / f"y_{part}.txt", np.int64, 1)
    subject = _load_matrix(folder / f"subject_{part}.txt", np.int64, 1)
    signals = [
        _load_matrix(folder / "Inertial Signals" / f"{name}_{part}.txt", np.float32, 2)
        for name in UCI_HAR_SIGNALS
    ]
    n_rows, width = signals[0].shape
    for name, sig in zip(UCI_HAR_SIGNALS, signals, strict=True):
        if sig.shape != (n_rows, width):
            raise DataError(
                f"{folder / 'Inertial Signals' / f'{name}_{part}.txt'}: shape {sig.shape}, "
                f"expected {(n_rows, width)} like {UCI_HAR_SIGNALS[0]}_{part}.txt"
            )
    for path, arr in ((folder / f"y_{part}.txt", y), (folder / f"subject_{part}.txt", subject)):
        if arr.shape[0] != n_rows:
            raise DataError(f"{path}: {arr.shape[0]} lines for {n_rows} windows")
    bad = sorted(set(np.unique(y).tolist()) - set(BASIC_ACTIVITIES))
    if bad:
        raise DataError(f"{folder / f'y_{part}.txt'}: labels {bad} outside 1..6")
    if width < 2:
        raise DataError(f"{folder / 'Inertial Signals'}: windows of {width} samples are too short")
    windows = np.stack(signals, axis=2)  # (rows, width, 6)
    return _reconstruct(windows, y, subject, width // 2, part)


def _reconstruct(
    windows: np.ndarray, y: np.ndarray, subject: np.ndarray, stride: int, part: str
) -> list[Recording]:
    """Join runs of consecutive windows (same subject and label, matching overlap) into recordings.

    Each run keeps the first ``stride`` samples of every window plus the whole last window, so cutting the
    recording again at (width, stride) yields exactly the original windows. The overlap check splits runs
    the files put back to back although they are not continuous (e.g. the same activity in two sessions).
    """
    n_rows, width, _ = windows.shape
    new_run = np.ones(n_rows, dtype=bool)
    if n_rows > 1:
        same = (subject[1:] == subject[:-1]) & (y[1:] == y[:-1])
        overlap = np.all(
            np.abs(windows[:-1, stride:] - windows[1:, : width - stride]) <= _OVERLAP_ATOL,
            axis=(1, 2),
        )
        new_run[1:] = ~(same & overlap)
    starts = np.flatnonzero(new_run)
    ends = np.concatenate((starts[1:], [n_rows]))
    recordings = []
    per_subject: dict[int, int] = {}
    for lo, hi in zip(starts, ends, strict=True):
        values = np.concatenate([windows[lo : hi - 1, :stride].reshape(-1, 6), windows[hi - 1]])
        subj = int(subject[lo])
        k = per_subject.get(subj, 0)
        per_subject[subj] = k + 1
        recordings.append(
            Recording(
                subject=subj,
                session=f"{part}_s{subj:02d}_r{k:03d}",
                values=np.ascontiguousarray(values, dtype=np.float32),
                labels=np.full(values.shape[0], int(y[lo]), dtype=np.int16),
            )
        )
    return recordings


def load_uci_har(path: str | os.PathLike[str]) -> Dataset:
    """Load a "UCI HAR Dataset" folder (train and/or test part) as continuous recordings at 50 Hz."""
    given = Path(path).expanduser()
    if not given.is_dir():
        raise DataError(f"uci-har:{path}: no such folder")
    root = _resolve_root(given.resolve())
    recordings: list[Recording] = []
    for part in PARTS:
        if (root / part).is_dir():
            recordings += _load_part(root, part)
    return Dataset(
        name=f"uci-har:{root}",
        recordings=recordings,
        label_names=dict(UCI_HAR_LABEL_NAMES),
        default_activities=BASIC_ACTIVITIES,
        sample_rate_hz=UCI_HAR_SAMPLE_RATE_HZ,
        channels=default_channels(),
        default_test_subjects=UCI_HAR_TEST_SUBJECTS,
    )
