"""``uci-har:PATH``: a tiny folder in the real layout, joined back into recordings and re-windowed exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hartool.core.errors import DataError
from hartool.data import load_dataset, make_windows
from hartool.data.uci_har import UCI_HAR_SIGNALS

WIDTH, STRIDE = 128, 64


def _windows_of(signal: np.ndarray) -> np.ndarray:
    starts = range(0, signal.shape[0] - WIDTH + 1, STRIDE)
    return np.stack([signal[s : s + WIDTH] for s in starts])


def _write_uci(root: Path, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Write train (subject 1) and test (subject 2) parts; return each part's (windows, y, subject) rows."""
    rng = np.random.default_rng(seed)
    # (subject, label, windows in the run). Two WALKING runs of subject 1 follow each other without being
    # continuous (two sessions), which only the overlap check can tell apart.
    layout = {
        "train": [(1, 1, 5), (1, 1, 3), (1, 4, 2), (1, 6, 1)],
        "test": [(2, 2, 4), (2, 3, 2)],
    }
    written = {}
    for part, runs in layout.items():
        rows, ys, subjects = [], [], []
        for subject, label, n in runs:
            signal = rng.normal(size=(WIDTH + (n - 1) * STRIDE, 6)).astype(np.float32)
            signal[:, 0] += 1.0  # a little "gravity" so acc and gyro differ
            windows = _windows_of(signal)
            assert windows.shape[0] == n
            rows.append(windows)
            ys += [label] * n
            subjects += [subject] * n
        x = np.concatenate(rows)
        folder = root / part / "Inertial Signals"
        folder.mkdir(parents=True)
        for channel, name in enumerate(UCI_HAR_SIGNALS):
            # The real files: one window per line, 16 characters per value in e-notation.
            np.savetxt(folder / f"{name}_{part}.txt", x[:, :, channel], fmt="%16.8e", delimiter="")
        np.savetxt(root / part / f"y_{part}.txt", ys, fmt="%d")
        np.savetxt(root / part / f"subject_{part}.txt", subjects, fmt="%d")
        written[part] = (x, np.asarray(ys), np.asarray(subjects))
    return written


def test_round_trip_to_the_original_windows(tmp_path: Path) -> None:
    written = _write_uci(tmp_path / "UCI HAR Dataset")
    ds = load_dataset(f"uci-har:{tmp_path / 'UCI HAR Dataset'}")
    assert ds.name == f"uci-har:{(tmp_path / 'UCI HAR Dataset').resolve()}"
    assert ds.sample_rate_hz == 50.0 and ds.default_activities == (1, 2, 3, 4, 5, 6)
    assert ds.subjects == [1, 2]
    # Five runs in train (the WALKING pair split by the overlap check), two in test.
    assert [r.session for r in ds.recordings] == [
        "train_s01_r000",
        "train_s01_r001",
        "train_s01_r002",
        "train_s01_r003",
        "test_s02_r000",
        "test_s02_r001",
    ]
    assert [len(r) for r in ds.recordings] == [384, 256, 192, 128, 320, 192]
    for rec in ds.recordings:
        assert rec.values.dtype == np.float32 and rec.labels.dtype == np.int16
        assert len(set(rec.labels.tolist())) == 1

    w = make_windows(ds, window=WIDTH, stride=STRIDE)
    x = np.concatenate([written["train"][0], written["test"][0]])
    y = np.concatenate([written["train"][1], written["test"][1]])
    subjects = np.concatenate([written["train"][2], written["test"][2]])
    np.testing.assert_array_equal(w.x, x)
    np.testing.assert_array_equal(np.asarray(w.label_ids)[w.y], y)
    np.testing.assert_array_equal(w.subject, subjects)


def test_parent_folder_is_accepted_and_the_name_reloads(tmp_path: Path) -> None:
    _write_uci(tmp_path / "UCI HAR Dataset")
    ds = load_dataset(f"uci-har:{tmp_path}")
    assert len(ds.recordings) == 6
    # Bundles store ds.name and reload from it.
    assert [len(r) for r in load_dataset(ds.name).recordings] == [len(r) for r in ds.recordings]


def test_missing_signal_file_is_named(tmp_path: Path) -> None:
    _write_uci(tmp_path)
    victim = tmp_path / "test" / "Inertial Signals" / "body_gyro_y_test.txt"
    victim.unlink()
    with pytest.raises(DataError, match="body_gyro_y_test.txt: missing UCI HAR file"):
        load_dataset(f"uci-har:{tmp_path}")


def test_inconsistent_files_are_data_errors(tmp_path: Path) -> None:
    _write_uci(tmp_path)
    y = tmp_path / "train" / "y_train.txt"
    y.write_text(y.read_text() + "1\n")
    with pytest.raises(DataError, match="y_train.txt: 12 lines for 11 windows"):
        load_dataset(f"uci-har:{tmp_path}")
    y.write_text("7\n" * 11)
    with pytest.raises(DataError, match=r"labels \[7\] outside 1..6"):
        load_dataset(f"uci-har:{tmp_path}")
    y.write_text("walking\n" * 11)
    with pytest.raises(DataError, match="y_train.txt: not a whitespace-separated numeric table"):
        load_dataset(f"uci-har:{tmp_path}")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("uci-har:/definitely/not/here", "no such folder"),
        ("uci-har:", "missing path"),
        ("kaggle:/x", "unknown dataset 'kaggle:/x'"),
        ("wisdm", "unknown dataset"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(spec)


def test_folder_without_parts(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no train/ or test/ folder"):
        load_dataset(f"uci-har:{tmp_path}")
