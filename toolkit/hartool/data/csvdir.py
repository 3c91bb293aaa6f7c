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


def _stable_id(text: str, taken: set[int]) -> int:
    # crc32 is stable across runs and machines (unlike hash()); 10000+ keeps clear of real subject numbers.
    # A collision (two names, one crc bucket) moves to the next free id; names are visited in sorted order.
    sid = 10000 + zlib.crc32(text.encode("utf-8")) % 90000
    while sid in taken:
        sid = 10000 + (sid - 10000 + 1) % 90000
    return sid


def subject_name_of(session: CsvSession, rel: str) -> str:
    """``# subject:`` as written, else the number in the file name (``s03_walk.csv`` -> ``"3"``), else the file."""
    declared = session.meta.get("subject", "").strip()
    if declared:
        return declared
    match = _SUBJECT_IN_NAME.search(Path(rel).stem.lower())
    if match:
        return str(int(match.group(1)))
    return Path(rel).with_suffix("").as_posix()


def _numeric(name: str) -> int | None:
    try:
        return int(name)
    except ValueError:
        return None


def subject_ids(names: list[str]) -> dict[str, int]:
    """Numbers keep their number (``"07"`` -> 7); other names get a stable id; every name has its own id."""
    ids = {n: num for n in names if (num := _numeric(n)) is not None}
    taken = set(ids.values())
    for name in sorted(set(names) - set(ids)):
        ids[name] = _stable_id(f"subject:{name}", taken)
        taken.add(ids[name])
    return ids


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

    names = [subject_name_of(s, rel) for s, rel in zip(sessions, rels, strict=True)]
    sid = subject_ids(names)
    recordings = []
    for session, rel, subject in zip(sessions, rels, names, strict=True):
        labels, inverse = np.unique(np.asarray(session.labels), return_inverse=True)
        lut = np.asarray([ids.get(str(n), UNLABELED) for n in labels], dtype=np.int16)
        recordings.append(
            Recording(
                subject=sid[subject],
                session=Path(rel).with_suffix("").as_posix(),
                values=session.values,
                labels=lut[inverse.reshape(-1)],
            )
        )
    # "01" and "1" are one subject: the first spelling met (in file order) names it.
    subject_names: dict[int, str] = {}
    for name in names:
        subject_names.setdefault(sid[name], name)
    return Dataset(
        name=f"csv:{root}",
        recordings=recordings,
        label_names={i: n for n, i in sorted(ids.items(), key=lambda kv: kv[1])},
        default_activities=tuple(sorted(ids.values())),
        sample_rate_hz=rate,
        channels=default_channels(),
        subject_names=subject_names,
    )
