"""The ``csv:DIR`` dataset: a folder of recordings in the ``hartool record`` CSV format, one file per session."""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

import numpy as np

from hartool.core.csvformat import CsvSession, read_csv_session
from hartool.core.errors import DataError
from hartool.data.recordings import HAPT_LABEL_NAMES, UNLABELED, Dataset, Recording, default_channels

# Files of one dataset must share a rate: windows are counted in samples.
RATE_TOLERANCE = 0.05
FIRST_CUSTOM_LABEL_ID = 101
_SUBJECT_IN_NAME = re.compile(r"(?:^|[^a-z0-9])(?:subject|subj|user|s)[_-]?(\d+)(?![0-9])")


def _stable_id(text: str) -> int:
    # crc32 is stable across runs and machines (unlike hash()); 10000+ keeps clear of real subject numbers.
    return 10000 + zlib.crc32(text.encode("utf-8")) % 90000


def subject_of(session: CsvSession, rel: str) -> int:
    """``# subject:`` (a number, or a name mapped to a stable id), else a number in the file name, else a per-file id."""
    declared = session.meta.get("subject", "").strip()
    if declared:
        try:
            return int(declared)
        except ValueError:
            return _stable_id(f"subject:{declared}")
    match = _SUBJECT_IN_NAME.search(Path(rel).stem.lower())
    if match:
        return int(match.group(1))
    return _stable_id(f"file:{rel}")


def _label_ids(sessions: list[CsvSession]) -> dict[str, int]:
    """HAPT names keep their HAPT id; other names get 101, 102, ... in sorted order."""
    hapt_ids = {name: i for i, name in HAPT_LABEL_NAMES.items()}
    names = sorted({name for s in sessions for name in s.labels if name})
    custom = [n for n in names if n not in hapt_ids]
    ids = {n: hapt_ids[n] for n in names if n in hapt_ids}
    ids.update({n: FIRST_CUSTOM_LABEL_ID + i for i, n in enumerate(custom)})
    return ids


def _dataset_rate(sessions: list[CsvSession], rels: list[str], root: Path) -> float:
    rates = [s.sample_rate_hz() for s in sessions]
    declared = {round(r, 6) for s, r in zip(sessions, rates, strict=True) if "sample_rate_hz" in s.meta}
    # A declared rate is exact; estimates from t_s jitter, so use their median.
    rate = declared.pop() if len(declared) == 1 else float(np.median(rates))
    for rel, r in zip(rels, rates, strict=True):
        if abs(r - rate) > RATE_TOLERANCE * rate:
            raise DataError(
                f"csv:{root}: {rel} is at {r:.2f} Hz but the folder is at {rate:.2f} Hz; keep one rate per folder"
            )
    return rate


def load_csv_dir(path: str | os.PathLike[str]) -> Dataset:
    """All ``**/*.csv`` recordings under ``path`` (sorted by relative path) as one dataset."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"csv:{path}: no such folder")
    root = root.resolve()
    files = sorted(
        (p for p in root.rglob("*.csv") if p.is_file()), key=lambda p: p.relative_to(root).as_posix()
    )
    if not files:
        raise DataError(f"csv:{root}: no *.csv recordings")
    sessions = [read_csv_session(f) for f in files]
    rels = [f.relative_to(root).as_posix() for f in files]
    rate = _dataset_rate(sessions, rels, root)
    ids = _label_ids(sessions)

    recordings = []
    for session, rel in zip(sessions, rels, strict=True):
        names, inverse = np.unique(np.asarray(session.labels), return_inverse=True)
        lut = np.asarray([ids.get(str(n), UNLABELED) for n in names], dtype=np.int16)
        recordings.append(
            Recording(
                subject=subject_of(session, rel),
                session=Path(rel).with_suffix("").as_posix(),
                values=session.values,
                labels=lut[inverse.reshape(-1)],
            )
        )
    return Dataset(
        name=f"csv:{root}",
        recordings=recordings,
        label_names={i: n for n, i in sorted(ids.items(), key=lambda kv: kv[1])},
        default_activities=tuple(sorted(ids.values())),
        sample_rate_hz=rate,
        channels=default_channels(),
    )
