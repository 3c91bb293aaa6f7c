"""The dataset model every source is decoded into: continuous recordings of 6 IMU channels with per-sample labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hartool.core.errors import DataError
from hartool.core.orientation import IMU_LAYOUT

# Channel order and units every loader produces (the model input contract starts here).
CHANNEL_NAMES: tuple[str, ...] = tuple(name for name, _unit in IMU_LAYOUT)
CHANNEL_UNITS: tuple[str, ...] = tuple(unit for _name, unit in IMU_LAYOUT)

UNLABELED = -1

# UCI HAPT activity ids; 1..6 are also the UCI HAR ids.
HAPT_LABEL_NAMES: dict[int, str] = {
    1: "WALKING",
    2: "WALKING_UPSTAIRS",
    3: "WALKING_DOWNSTAIRS",
    4: "SITTING",
    5: "STANDING",
    6: "LAYING",
    7: "STAND_TO_SIT",
    8: "SIT_TO_STAND",
    9: "SIT_TO_LIE",
    10: "LIE_TO_SIT",
    11: "STAND_TO_LIE",
    12: "LIE_TO_STAND",
}
BASIC_ACTIVITIES: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
TRANSITION_ACTIVITIES: tuple[int, ...] = (7, 8, 9, 10, 11, 12)
UCI_HAR_LABEL_NAMES: dict[int, str] = {i: HAPT_LABEL_NAMES[i] for i in BASIC_ACTIVITIES}
# Subjects of the official UCI HAR test partition (the other 21 of 30 are training subjects).
UCI_HAR_TEST_SUBJECTS: tuple[int, ...] = (2, 4, 9, 10, 12, 13, 18, 20, 24)


def default_channels() -> list[dict]:
    """A fresh ``[{"name": ..., "unit": ...}, ...]`` list (fresh so callers may mutate it)."""
    return [{"name": n, "unit": u} for n, u in zip(CHANNEL_NAMES, CHANNEL_UNITS, strict=True)]


@dataclass(frozen=True, eq=False)
class Recording:
    """One continuous session of one subject."""

    subject: int
    session: str  # e.g. "exp01_user01" or the csv file stem
    values: np.ndarray  # float32 (n, 6): acc_x, acc_y, acc_z [g], gyro_x, gyro_y, gyro_z [rad/s]
    labels: np.ndarray  # int16 (n,), -1 = unlabeled

    def __post_init__(self) -> None:
        # Loaders are the only producers; a shape slip here would surface much later as a bad model.
        if self.values.ndim != 2 or self.values.shape[1] != len(CHANNEL_NAMES):
            raise DataError(f"recording {self.session}: values must be (n, 6), got {self.values.shape}")
        if self.labels.shape != (self.values.shape[0],):
            raise DataError(
                f"recording {self.session}: {self.labels.shape[0]} labels for {self.values.shape[0]} samples"
            )

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    """Recordings plus what is needed to interpret them."""

    name: str  # "hapt", "uci-har:/abs/path", "csv:/abs/dir"
    recordings: list[Recording]
    label_names: dict[int, str]  # id -> name
    default_activities: tuple[int, ...]  # hapt/uci-har: (1..6); csv: all ids present
    sample_rate_hz: float
    channels: list[dict]  # [{"name": "acc_x", "unit": "g"}, ..., {"name": "gyro_z", "unit": "rad/s"}]
    # Subject id -> the name the user wrote (``# subject: alice``); ids without an entry are named by their number.
    subject_names: dict[int, str] = field(default_factory=dict)
    # The dataset's own test partition (UCI HAR's 9 people); None: no official split (csv:DIR).
    default_test_subjects: tuple[int, ...] | None = None

    @property
    def subjects(self) -> list[int]:
        """Sorted subject ids present."""
        return sorted({r.subject for r in self.recordings})

    def subject_name(self, subject: int) -> str:
        """The subject's name as written in the data (``"alice"``, ``"7"``)."""
        return self.subject_names.get(int(subject), str(int(subject)))

    def in_name_order(self, subjects: list[int] | None = None) -> list[int]:
        """Subject ids ordered for people: numbers numerically first, then names alphabetically."""
        def key(s: int) -> tuple[int, int, str]:
            name = self.subject_name(s)
            return (0, int(name), name) if name.isdigit() else (1, 0, name)

        return sorted(self.subjects if subjects is None else subjects, key=key)


def recording_for_subject(ds: Dataset, subject: int) -> list[Recording]:
    """All recordings of ``subject`` in dataset order; DataError if the subject is not in the dataset."""
    found = [r for r in ds.recordings if r.subject == int(subject)]
    if not found:
        raise DataError(
            f"subject {subject} is not in dataset {ds.name} (subjects: {_id_ranges(ds.subjects)})"
        )
    return found


def _id_ranges(ids: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``: keeps error lines short."""
    parts: list[str] = []
    start = prev = None
    for i in sorted(ids):
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = i
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(parts) or "none"
