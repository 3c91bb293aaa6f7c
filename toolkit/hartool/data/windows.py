"""Cutting recordings into fixed-size labelled windows, subject-wise splits and dataset summaries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hartool.core.errors import DataError
from hartool.data.recordings import TRANSITION_ACTIVITIES, UCI_HAR_TEST_SUBJECTS, UNLABELED, Dataset
from hartool.data.windowing import describe, labelled_runs, proposed_window


@dataclass(frozen=True, eq=False)
class Windows:
    """Labelled windows ready for a model."""

    x: np.ndarray  # float32 (N, window, 6)
    y: np.ndarray  # int64 (N,), class index into `labels`
    subject: np.ndarray  # int32 (N,)
    labels: list[str]  # class names, index = model output
    label_ids: list[int]  # dataset ids, same order

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, mask_or_idx: np.ndarray | Sequence[int] | Sequence[bool]) -> Windows:
        """The windows selected by a boolean mask or an index array; the class list is kept as is."""
        sel = np.asarray(mask_or_idx)
        if sel.dtype == bool and sel.shape != self.y.shape:
            raise DataError(f"window mask has shape {sel.shape}, expected {self.y.shape}")
        if sel.dtype != bool:
            sel = sel.astype(np.int64, copy=False)
        return Windows(
            x=self.x[sel],
            y=self.y[sel],
            subject=self.subject[sel],
            labels=list(self.labels),
            label_ids=list(self.label_ids),
        )

    def class_counts(self) -> dict[str, int]:
        """Windows per class name, in class order (zero counts included)."""
        counts = (
            np.bincount(self.y, minlength=len(self.labels)) if len(self.y) else np.zeros(len(self.labels))
        )
        return {name: int(c) for name, c in zip(self.labels, counts, strict=True)}


def _selected_activities(
    ds: Dataset, activities: Sequence[int] | None, include_transitions: bool
) -> list[int]:
    chosen = list(ds.default_activities if activities is None else activities)
    if include_transitions:
        # Only the transitions the dataset knows: uci-har has none, csv may have some.
        chosen += [a for a in TRANSITION_ACTIVITIES if a in ds.label_names]
    unknown = sorted({int(a) for a in chosen} - set(ds.label_names))
    if unknown:
        known = ", ".join(n for _, n in sorted(ds.label_names.items()))
        raise DataError(f"activities {unknown} are not labels of {ds.name} (labels: {known})")
    return sorted({int(a) for a in chosen})


def label_ids_for(ds: Dataset, labels: Sequence[str]) -> list[int]:
    """Dataset ids of activity names, in the given order (``walking upstairs`` matches ``WALKING_UPSTAIRS``)."""
    from hartool.core.csvformat import canonical_label

    by_name = {canonical_label(n): i for i, n in ds.label_names.items()}
    wanted = [canonical_label(str(n)) for n in labels if str(n).strip()]
    if not wanted:
        raise DataError("--labels is empty: name at least one activity")
    dupes = sorted({n for n in wanted if wanted.count(n) > 1})
    if dupes:
        raise DataError(f"label {', '.join(dupes)} is named twice in --labels")
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise DataError(
            f"label {', '.join(unknown)} is not in {ds.name} (labels: {', '.join(sorted(by_name))})"
        )
    return [by_name[n] for n in wanted]


def _run_starts(
    labels: np.ndarray, wanted: np.ndarray, window: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Window start offsets and their label: windows slide within runs of one constant, wanted label."""
    n = labels.shape[0]
    if n < window:
        return np.empty(0, np.int64), np.empty(0, labels.dtype)
    edges = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    run_lo = np.concatenate(([0], edges))
    run_hi = np.concatenate((edges, [n]))
    run_label = labels[run_lo]
    keep = (run_label != UNLABELED) & np.isin(run_label, wanted) & (run_hi - run_lo >= window)
    starts, starts_label = [], []
    for lo, hi, lab in zip(run_lo[keep], run_hi[keep], run_label[keep], strict=True):
        s = np.arange(lo, hi - window + 1, stride, dtype=np.int64)
        starts.append(s)
        starts_label.append(np.full(s.shape, lab, dtype=labels.dtype))
    if not starts:
        return np.empty(0, np.int64), np.empty(0, labels.dtype)
    return np.concatenate(starts), np.concatenate(starts_label)


def make_windows(
    ds: Dataset,
    window: int = 128,
    stride: int = 64,
    activities: Sequence[int] | None = None,
    include_transitions: bool = False,
    labels: Sequence[str] | None = None,
    allow_empty: bool = False,
) -> Windows:
    """Slide ``window``-sample windows with ``stride`` over every run of constant label.

    Windows never cross a label change, an unlabeled sample or a recording boundary. ``activities``
    defaults to ``ds.default_activities``; ``include_transitions`` adds the HAPT transitions 7..12.
    Classes are the chosen activity ids in ascending order, or, when ``labels`` (activity names) is
    given, exactly those activities in that order (``activities`` and ``include_transitions`` are then
    not used). Samples of other activities are left out. No window at all is a DataError unless
    ``allow_empty`` (``data info`` still shows the seconds then).
    """
    if int(window) < 1 or int(stride) < 1:
        raise DataError(f"window ({window}) and stride ({stride}) must be positive")
    window, stride = int(window), int(stride)
    if labels is not None:
        ids = label_ids_for(ds, labels)
    else:
        ids = _selected_activities(ds, activities, include_transitions)
    wanted = np.sort(np.asarray(ids, dtype=np.int16))
    # Class index of the k-th smallest id: the position of that id in `ids` (the caller's order).
    class_of_sorted = np.argsort(np.asarray(ids), kind="stable")

    xs, ys, subs = [], [], []
    for rec in ds.recordings:
        starts, labs = _run_starts(rec.labels, wanted, window, stride)
        if not starts.size:
            continue
        # (n - window + 1, 6, window) view without copying; pick the starts, then put time before channels.
        view = np.lib.stride_tricks.sliding_window_view(rec.values, window, axis=0)
        xs.append(np.ascontiguousarray(view[starts].transpose(0, 2, 1), dtype=np.float32))
        # `wanted` is sorted and every label in `labs` is in it: its position leads to the class index.
        ys.append(class_of_sorted[np.searchsorted(wanted, labs)].astype(np.int64))
        subs.append(np.full(starts.size, rec.subject, dtype=np.int32))
    if not xs and allow_empty:
        xs, ys, subs = [np.empty((0, window, 6), np.float32)], [np.empty(0, np.int64)], [np.empty(0, np.int32)]
    if not xs:
        raise DataError(_no_window_message(ds, ids, window))
    return Windows(
        x=np.concatenate(xs),
        y=np.concatenate(ys),
        subject=np.concatenate(subs),
        labels=[ds.label_names[a] for a in ids],
        label_ids=ids,
    )


def _no_window_message(ds: Dataset, ids: Sequence[int], window: int) -> str:
    """Why no window fits, in the user's activity names, with the window that would fit if there is one."""
    names = ", ".join(ds.label_names[i] for i in ids)
    runs = labelled_runs(ds, ids)
    text = f"{ds.name}: no window of {describe(window, ds.sample_rate_hz)} fits in any labelled run of {names}"
    if runs.size == 0:
        return text + " (no labelled samples of them)"
    text += f"; the longest run is {describe(int(runs.max()), ds.sample_rate_hz)}"
    better = proposed_window(ds, ids, window)
    return text + (f": try --window {better}" if better is not None else "")


@dataclass(frozen=True, eq=False)
class Split:
    """Subject-disjoint train / validation / test windows."""

    train: Windows
    val: Windows
    test: Windows
    train_subjects: list[int]
    val_subjects: list[int]
    test_subjects: list[int]


def split_by_subject(
    w: Windows,
    test_subjects: Sequence[int] = UCI_HAR_TEST_SUBJECTS,
    val_fraction: float = 0.15,
    seed: int = 0,
) -> Split:
    """Split by subject: the given test subjects, then a seeded random ``val_fraction`` of the rest for validation.

    Test subjects absent from ``w`` are ignored. Validation never takes a test subject and, when there
    are at least two training subjects and ``val_fraction > 0``, gets at least one and leaves at least one.
    """
    if not 0.0 <= float(val_fraction) < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    present = sorted(int(s) for s in np.unique(w.subject))
    test = sorted(set(present) & {int(s) for s in test_subjects})
    pool = [s for s in present if s not in test]
    n_val = int(round(val_fraction * len(pool)))
    if val_fraction > 0 and len(pool) >= 2:
        n_val = min(max(n_val, 1), len(pool) - 1)
    else:
        n_val = 0
    rng = np.random.default_rng(seed)
    val = sorted(int(s) for s in rng.choice(np.asarray(pool, dtype=np.int64), size=n_val, replace=False))
    train = [s for s in pool if s not in val]
    return Split(
        train=w.subset(np.isin(w.subject, train)),
        val=w.subset(np.isin(w.subject, val)),
        test=w.subset(np.isin(w.subject, test)),
        train_subjects=train,
        val_subjects=val,
        test_subjects=test,
    )


def dataset_info(ds: Dataset, w: Windows) -> dict:
    """A JSON-able summary of the dataset and its windows (used by ``hartool data info`` and reports)."""
    summary = {
        "name": ds.name,
        "sample_rate_hz": float(ds.sample_rate_hz),
        "channels": [dict(c) for c in ds.channels],
        "subjects": ds.subjects,
        "n_recordings": len(ds.recordings),
        "n_samples": int(sum(len(r.labels) for r in ds.recordings)),
        "n_labelled_samples": int(sum(int(np.count_nonzero(r.labels != UNLABELED)) for r in ds.recordings)),
        "label_names": {str(i): n for i, n in sorted(ds.label_names.items())},
        "classes": list(w.labels),
        "class_ids": [int(i) for i in w.label_ids],
        "window": int(w.x.shape[1]) if w.x.ndim == 3 else None,
        "n_windows": len(w),
        "windows_per_class": w.class_counts(),
    }
    if ds.default_test_subjects is not None:
        # The dataset's own partition (UCI HAR: train = every non-test subject, validation included).
        test_mask = np.isin(w.subject, ds.default_test_subjects)
        summary.update({
            "uci_test_subjects": [int(s) for s in np.unique(w.subject[test_mask])],
            "train_windows": int(np.count_nonzero(~test_mask)),
            "test_windows": int(np.count_nonzero(test_mask)),
        })
    return summary
