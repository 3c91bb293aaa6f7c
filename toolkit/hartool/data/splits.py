"""Subject splits by the user's own subjects: names as written in the data, defaults for any dataset, checks.

``choose_split`` picks the test, validation and training subjects of a windowed dataset:

- test: the subjects named by the user (``--test-subjects alice,bob`` or numbers), else the dataset's own
  test partition (UCI HAR's 9 people for hapt / uci-har), else a seeded, deterministic ~30 % of the
  subjects (at least one, at least one left to train on, preferring a choice that leaves every class in
  training). An empty tuple means "no test subject": everyone trains (the final model of ``--cv loso``).
- validation: the named subjects (``--val-subjects``), else a seeded ``val_fraction`` of the rest; with a
  single non-test subject there is none, and validation then watches the training subjects' windows
  (monitoring only: it says nothing about new people).

Every problem a user can cause is one :class:`DataError` line: a named subject who isn't there (the ones
that are get listed), fewer than two subjects, a subject in two splits, a class with no training windows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hartool.core.errors import DataError
from hartool.data.recordings import Dataset
from hartool.data.windows import Split, Windows, make_windows

# The default share of csv:DIR subjects held out for testing (UCI HAR holds out 9 of 30).
DEFAULT_TEST_FRACTION = 0.3
# Seeded tries at a test choice that leaves every class with training windows.
_CHOICE_TRIES = 64
# Share of the training windows used to watch training when there is no validation subject.
FALLBACK_VAL_FRACTION = 0.15


def cap_windows(windows: Windows, limit: int | None, seed: int) -> Windows:
    """A seeded, order-preserving subset of at most ``limit`` windows (smoke tests train on few windows)."""
    if limit is None or len(windows.y) <= limit:
        return windows
    rng = np.random.default_rng(seed)
    return windows.subset(np.sort(rng.choice(len(windows.y), size=limit, replace=False)))


def _listing(ds: Dataset, ids: Sequence[int]) -> str:
    """Names for messages: numbers in numeric order, then names in alphabetical order."""
    return ", ".join(ds.subject_name(s) for s in ds.in_name_order(list(ids))) or "none"


def _covers_all(w: Windows, subjects: Sequence[int]) -> bool:
    """Whether the windows of ``subjects`` hold every class."""
    return np.unique(w.y[np.isin(w.subject, subjects)]).size == len(w.labels)


def resolve_subjects(ds: Dataset, names: Sequence[str], option: str = "--test-subjects") -> list[int]:
    """Subject ids of ``names``: the name as written in the data, else the same number (``02`` = ``2``)."""
    by_name = {ds.subject_name(s): s for s in ds.subjects}
    # Only subjects named by a number answer to a number: a name's internal id is not the user's to type.
    by_number: dict[int, int] = {}
    for s in ds.subjects:
        name = ds.subject_name(s)
        if name.lstrip("+-").isdigit():
            by_number[int(name)] = s
    ids: list[int] = []
    missing: list[str] = []
    for raw in names:
        name = str(raw).strip()
        if name in by_name:
            ids.append(by_name[name])
        elif name.lstrip("+-").isdigit() and int(name) in by_number:
            ids.append(by_number[int(name)])
        else:
            missing.append(name)
    if missing:
        raise DataError(
            f"{option}: subject {', '.join(missing)} is not in {ds.name} (subjects: {_listing(ds, ds.subjects)})"
        )
    dupes = sorted({s for s in ids if ids.count(s) > 1})
    if dupes:
        raise DataError(f"{option}: subject {_listing(ds, dupes)} is named twice")
    return ids


def without_subjects(ds: Dataset, names: Sequence[str]) -> Dataset:
    """``ds`` without the recordings of the named subjects (names as written, or numbers); ``ds`` itself if none."""
    if not names:
        return ds
    dropped = set(resolve_subjects(ds, names, "excluded subjects"))
    return dataclasses.replace(ds, recordings=[r for r in ds.recordings if r.subject not in dropped])


@dataclass(frozen=True, eq=False)
class TrainingData:
    """The windows training uses, their split, and how the split was chosen (for the manifest)."""

    dataset: Dataset
    split: Split
    train: Windows  # dense (train_stride) windows of the training subjects, capped
    val: Windows
    test: Windows
    test_from: str  # "given" | "dataset" | "seeded" | "none"
    val_from: str  # "given" | "seeded" | "training windows"

    @property
    def labels(self) -> list[str]:
        return list(self.split.train.labels)

    @property
    def label_ids(self) -> list[int]:
        return [int(i) for i in self.split.train.label_ids]

    def manifest_section(self, max_windows: int | None) -> dict[str, Any]:
        """The manifest's ``dataset`` entry: subject ids (as before) and names of every split."""
        s, ds = self.split, self.dataset
        return {
            "name": ds.name,
            "train_subjects": s.train_subjects,
            "val_subjects": s.val_subjects,
            "test_subjects": s.test_subjects,
            "train_subject_names": [ds.subject_name(i) for i in s.train_subjects],
            "val_subject_names": [ds.subject_name(i) for i in s.val_subjects],
            "test_subject_names": [ds.subject_name(i) for i in s.test_subjects],
            "split": {"test": self.test_from, "val": self.val_from},
            "windows": {"train": len(self.train.y), "val": len(self.val.y), "test": len(self.test.y)},
            "max_windows": max_windows,
        }


def _seeded_test(w: Windows, present: list[int], seed: int) -> list[int]:
    """~30 % of the subjects, seeded; prefer a choice whose remaining subjects have every class."""
    n_test = min(max(1, int(round(DEFAULT_TEST_FRACTION * len(present)))), len(present) - 1)
    rng = np.random.default_rng(seed)
    first: list[int] | None = None
    for _ in range(_CHOICE_TRIES):
        test = sorted(int(s) for s in rng.choice(present, size=n_test, replace=False))
        first = first or test
        if _covers_all(w, [s for s in present if s not in test]):
            return test
    assert first is not None
    return first  # no choice keeps every class; the class check names the missing one


def _pick_test(ds: Dataset, w: Windows, present: list[int], test: Sequence[str] | None,
               seed: int) -> tuple[list[int], str]:
    if test is not None and len(test) == 0:
        return [], "none"
    if test is not None:
        return sorted(resolve_subjects(ds, test, "--test-subjects")), "given"
    official = sorted(set(ds.default_test_subjects or ()) & set(present))
    if official and len(official) < len(present):
        return official, "dataset"
    return _seeded_test(w, present, seed), "seeded"


def _pick_val(ds: Dataset, w: Windows, pool: list[int], val: Sequence[str] | None, test: list[int],
              val_fraction: float, seed: int) -> tuple[list[int], str]:
    if val is not None:
        ids = sorted(resolve_subjects(ds, val, "--val-subjects"))
        both = sorted(set(ids) & set(test))
        if both:
            raise DataError(f"subject {_listing(ds, both)} is in both --test-subjects and --val-subjects")
        return ids, "given"
    n_val = int(round(val_fraction * len(pool))) if val_fraction > 0 and len(pool) >= 2 else 0
    if n_val == 0 and val_fraction > 0 and len(pool) >= 2:
        n_val = 1
    n_val = min(n_val, max(len(pool) - 1, 0))
    rng = np.random.default_rng(seed)
    first: list[int] | None = None
    # The first draw is the historical choice (hapt: 17, 21, 26); later draws only if it starves a class.
    for _ in range(_CHOICE_TRIES if n_val else 1):
        chosen = sorted(int(s) for s in rng.choice(np.asarray(pool, dtype=np.int64), size=n_val, replace=False))
        first = chosen if first is None else first
        if _covers_all(w, [s for s in pool if s not in chosen]):
            break
    else:
        chosen = first or []
    return chosen, ("seeded" if chosen else "training windows")


def _check_windows_of(ds: Dataset, w: Windows, ids: list[int], option: str) -> None:
    empty = [s for s in ids if not np.any(w.subject == s)]
    if empty:
        raise DataError(
            f"{option}: subject {_listing(ds, empty)} has no windows of {', '.join(w.labels)} "
            f"(window {w.x.shape[1]} samples); see `hartool data info {ds.name}`"
        )


def choose_split(ds: Dataset, w: Windows, test: Sequence[str] | None = None, val: Sequence[str] | None = None,
                 val_fraction: float = 0.15, seed: int = 0) -> tuple[Split, str, str]:
    """Split ``w`` (evaluation windows) by subject; returns the split, how test and validation were chosen."""
    if not 0.0 <= float(val_fraction) < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    present = sorted(int(s) for s in np.unique(w.subject))
    if len(present) < 2:
        raise DataError(
            f"{ds.name}: {len(present)} subject with windows ({_listing(ds, present)}); a split needs at least "
            "two (one to train on, one to test on): record another person or session with '# subject:'"
        )
    test_ids, test_from = _pick_test(ds, w, present, test, seed)
    _check_windows_of(ds, w, test_ids, "--test-subjects")
    pool = [s for s in present if s not in test_ids]
    # No test subject means "train on everyone": no subject is held out for validation either.
    no_holdout = test is not None and len(test) == 0 and val is None
    val_ids, val_from = ([], "training windows") if no_holdout else _pick_val(ds, w, pool, val, test_ids,
                                                                              val_fraction, seed)
    _check_windows_of(ds, w, val_ids, "--val-subjects")
    train_ids = [s for s in pool if s not in val_ids]
    if not train_ids:
        raise DataError(
            f"no training subject left: test {_listing(ds, test_ids)}, validation {_listing(ds, val_ids)} "
            f"take all of {_listing(ds, present)}"
        )
    train = w.subset(np.isin(w.subject, train_ids))
    counts = train.class_counts()
    missing = [name for name, c in counts.items() if c == 0]
    if missing:
        raise DataError(
            f"class {', '.join(missing)} has no training windows (training subjects: {_listing(ds, train_ids)}); "
            "record it for a training subject, or leave it out with --labels"
        )
    split = Split(
        train=train,
        val=w.subset(np.isin(w.subject, val_ids)),
        # No test subject: the model is scored on the windows it trained on (clearly marked in the manifest).
        test=w.subset(np.isin(w.subject, test_ids if test_ids else train_ids)),
        # Listed as people read them (numbers in order, then names): the manifest shows these lists.
        train_subjects=ds.in_name_order(train_ids),
        val_subjects=ds.in_name_order(val_ids),
        test_subjects=ds.in_name_order(test_ids),
    )
    return split, test_from, val_from


def training_data(ds: Dataset, *, window: int, stride: int, train_stride: int, labels: Sequence[str] | None = None,
                  include_transitions: bool = False, test: Sequence[str] | None = None,
                  val: Sequence[str] | None = None, val_fraction: float = 0.15, seed: int = 0,
                  max_windows: int | None = None) -> TrainingData:
    """Windows, split and caps for one training run (evaluation at ``stride``, training at ``train_stride``)."""
    evaluation = make_windows(ds, window, stride, include_transitions=include_transitions, labels=labels)
    split, test_from, val_from = choose_split(ds, evaluation, test, val, val_fraction, seed)
    dense = make_windows(ds, window, train_stride, include_transitions=include_transitions, labels=labels)
    train_w = cap_windows(dense.subset(np.isin(dense.subject, split.train_subjects)), max_windows, seed)
    val_w = split.val
    if not split.val_subjects:
        # No validation subject: validation only watches training (early stopping, the best-val checkpoint)
        # on training subjects' windows, which overlap what the model trains on.
        rng = np.random.default_rng(seed)
        n = max(1, int(round(FALLBACK_VAL_FRACTION * len(split.train.y))))
        val_w = split.train.subset(np.sort(rng.choice(len(split.train.y), size=n, replace=False)))
    val_w = cap_windows(val_w, max_windows, seed)
    test_w = cap_windows(split.test, max_windows, seed)
    return TrainingData(dataset=ds, split=split, train=train_w, val=val_w, test=test_w, test_from=test_from,
                        val_from=val_from)
