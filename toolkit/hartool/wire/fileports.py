"""Finite and piped byte sources: stdin, raw byte captures and ``hartool record`` CSV files replayed as the
text lines a device would send."""

from __future__ import annotations

import os
import select
import stat
import sys
from pathlib import Path

import numpy as np

from hartool.core.csvformat import CSV_COLUMNS, read_csv_session
from hartool.core.errors import DataError, WireError
from hartool.wire.port import DeviceGone, Port
from hartool.wire.serialport import open_error

__all__ = ["FilePort", "RecordingReplayPort", "StdinPort", "is_csv_recording"]

_CSV_HEADER = ",".join(CSV_COLUMNS)


class _FdPort(Port):
    """Shared read logic for sources that are a plain file descriptor (stdin, files)."""

    is_file = True

    def __init__(self, name: str, fd: int, timeout: float) -> None:
        super().__init__(name, timeout)
        self._fd = fd
        self._eof = False

    @property
    def eof(self) -> bool:
        return self._eof

    def read(self, n: int) -> bytes:
        if self._eof:
            return b""
        try:
            ready, _, _ = select.select([self._fd], [], [], self.timeout)
            if not ready:
                return b""
            data = os.read(self._fd, n)
        except OSError as exc:
            raise DeviceGone(f"{self.name}: read failed ({exc})") from exc
        if not data:
            self._eof = True
        return data


class StdinPort(_FdPort):
    """Bytes piped into ``hartool`` (``-``); read with ``select`` + ``os.read`` so a read never blocks."""

    def __init__(self, timeout: float = 0.05, fd: int | None = None) -> None:
        if fd is None:
            if sys.stdin is None:
                raise WireError("cannot read stdin: there is none")
            fd = sys.stdin.fileno()
        super().__init__("stdin", fd, timeout)
        # Redirected from a regular file: a complete recording. A pipe may start mid-record (`cat /dev/tty`).
        self.is_file = stat.S_ISREG(os.fstat(fd).st_mode)
        # close() is the base's no-op: stdin belongs to the process.


class FilePort(_FdPort):
    """Replay of a raw byte capture (text lines or binary frames), as fast as it is read."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 0.05) -> None:
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise open_error(str(path), exc, hints=False) from exc
        super().__init__(str(path), fd, timeout)
        self.path = path

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._eof = True


class RecordingReplayPort(Port):
    """Replay of a ``hartool record`` CSV file as the text lines a device would send (``t_ms,6 values``).

    The file is parsed (and checked) by :func:`read_csv_session`, so ``# units:`` are converted to g and
    rad/s like the dataset loader does; labels are dropped and ``t_s`` becomes integer milliseconds.
    Values are written with 9 significant digits, which round-trips float32 exactly.
    """

    is_file = True
    time_unit = "ms"  # the replay writes t_s as integer ms: no unit to detect (nor to announce)
    _LINES_PER_FILL = 512

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        super().__init__(str(self.path), 0.0)
        try:
            session = read_csv_session(self.path)
        except DataError as exc:
            raise WireError(f"cannot replay {exc}") from exc
        self._t_ms = np.round((session.t_s - session.t_s[0]) * 1000.0).astype(np.int64)
        self._values = session.values
        self.sample_rate_hz = session.sample_rate_hz()
        self._next = 0
        self._buf = bytearray()
        self._fmt = "%d," + ",".join(["%.9g"] * self._values.shape[1]) + "\n"

    @property
    def eof(self) -> bool:
        return self._next >= len(self._values) and not self._buf

    def read(self, n: int) -> bytes:
        while len(self._buf) < n and self._next < len(self._values):
            a, b = self._next, min(self._next + self._LINES_PER_FILL, len(self._values))
            rows = np.column_stack([self._t_ms[a:b], self._values[a:b].astype(np.float64)])
            flat = [v for t, *vals in rows.tolist() for v in (int(t), *vals)]
            self._buf += ((self._fmt * (b - a)) % tuple(flat)).encode("ascii")
            self._next = b
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def close(self) -> None:
        self._next = len(self._values)
        self._buf.clear()


def is_csv_recording(path: Path) -> bool:
    """A ``hartool record`` file starts with ``# key:`` lines and/or the ``t_s,acc_x,...`` header."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    for raw in head.splitlines():
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        return line.replace(b" ", b"") == _CSV_HEADER.encode()
    return False
