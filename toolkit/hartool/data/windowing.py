"""Window and stride lengths in seconds or samples, resolved at a dataset's rate, and the window that fits the data.

Defaults are in seconds (2.56 s windows, 1.28 s hops: HAPT's 128 / 64 samples at 50 Hz), so a 10 Hz
smartwatch gets 26-sample windows and a 100 Hz board 256, not HAPT's 128 samples whatever the rate.
A length is written ``"2.56s"`` (seconds) or ``"128"`` / ``128`` (samples).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hartool.core.errors import DataError
from hartool.data.recordings import UNLABELED, Dataset

DEFAULT_WINDOW_S = 2.56
DEFAULT_STRIDE_S = 1.28
# A proposed window keeps at least this share of the labelled samples (in runs at least one window long).
KEEP_SHARE = 0.8
# Never propose a window under this: a fraction of a stride tells nothing about an activity.
MIN_WINDOW_S = 0.5


def parse_length(text: str | int | float) -> tuple[float, str]:
    """``"2.56s"`` -> ``(2.56, "s")``; ``"128"`` or ``128`` -> ``(128, "samples")``; anything else a DataError."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        value, unit = float(text), "samples"
    else:
        raw = str(text).strip().lower()
        unit = "s" if raw.endswith("s") else "samples"
        try:
            value = float(raw[:-1] if unit == "s" else raw)
        except ValueError:
            raise DataError(f"'{text}' is not a length: write seconds as 2.56s or samples as 128") from None
        if unit == "samples" and value != int(value):
            raise DataError(f"'{text}': a length in samples is a whole number (or write seconds, e.g. {value}s)")
    if not np.isfinite(value) or value <= 0:
        raise DataError(f"'{text}': a length must be positive")
    return value, unit


def to_samples(length: str | int | float | None, rate_hz: float, default_s: float) -> int:
    """A length (seconds, samples or None for ``default_s``) in samples at ``rate_hz``, at least 1."""
    value, unit = (default_s, "s") if length is None else parse_length(length)
    return max(1, int(round(value * rate_hz))) if unit == "s" else int(value)


def describe(samples: int, rate_hz: float) -> str:
    """``"26 samples (2.60 s at 10 Hz)"``: both units, for messages."""
    return f"{samples} samples ({samples / rate_hz:.2f} s at {rate_hz:g} Hz)"


def labelled_runs(ds: Dataset, label_ids: Sequence[int]) -> np.ndarray:
    """Lengths in samples of every run of one constant label among ``label_ids`` (unlabelled runs left out)."""
    wanted = np.asarray(list(label_ids), dtype=np.int16)
    out = []
    for rec in ds.recordings:
        lab = rec.labels
        if lab.size == 0:
            continue
        edges = np.flatnonzero(lab[1:] != lab[:-1]) + 1
        lo = np.concatenate(([0], edges))
        hi = np.concatenate((edges, [lab.size]))
        keep = (lab[lo] != UNLABELED) & np.isin(lab[lo], wanted)
        out.append((hi - lo)[keep])
    return np.concatenate(out) if out else np.empty(0, np.int64)


def kept_share(runs: np.ndarray, window: int) -> float:
    """Share of the labelled samples that lie in runs long enough for one ``window``."""
    total = runs.sum()
    return float(runs[runs >= window].sum() / total) if total else 0.0


def proposed_window(ds: Dataset, label_ids: Sequence[int], window: int) -> int | None:
    """The largest window (<= ``window``) that keeps ``KEEP_SHARE`` of the labelled samples, or None if ``window``
    already does (or no window of at least ``MIN_WINDOW_S`` would)."""
    runs = labelled_runs(ds, label_ids)
    if runs.size == 0 or kept_share(runs, window) >= KEEP_SHARE:
        return None
    # The share only drops as the window grows, and it changes only at run lengths: try those, longest first.
    floor = max(1, int(np.ceil(MIN_WINDOW_S * ds.sample_rate_hz)))
    for candidate in sorted({int(r) for r in runs if floor <= r < window}, reverse=True):
        if kept_share(runs, candidate) >= KEEP_SHARE:
            return candidate
    return None


def window_advice(ds: Dataset, label_ids: Sequence[int], window: int) -> str:
    """One sentence saying which ``--window`` would keep most of the data, or "" when ``window`` fits."""
    better = proposed_window(ds, label_ids, window)
    if better is None:
        return ""
    runs = labelled_runs(ds, label_ids)
    rate = ds.sample_rate_hz
    return (f"a window of {describe(window, rate)} keeps {kept_share(runs, window):.0%} of the labelled samples; "
            f"--window {better} ({better / rate:.2f} s) keeps {kept_share(runs, better):.0%}")
