"""Byte sources for the wire layer: serial ports and pyserial URLs, stdin and recorded-file replay, behind one ``Port``.

Listening sources (``tcp-listen://``, ``udp://``, ``http://``, ``mqtt://``) live in :mod:`hartool.wire.listen`;
:func:`open_port` dispatches to them by scheme.
"""

from __future__ import annotations

import errno
import io
import os
import select
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import serial
from serial.tools import list_ports

from hartool.core.csvformat import CSV_COLUMNS, read_csv_session
from hartool.core.errors import DataError, WireError

__all__ = [
    "DEFAULT_BAUD",
    "DeviceGone",
    "FilePort",
    "Port",
    "RecordingReplayPort",
    "SerialPort",
    "SerialPortInfo",
    "StdinPort",
    "candidate_ports",
    "list_serial_ports",
    "open_port",
]

DEFAULT_BAUD = 115200
WRITE_TIMEOUT_S = 1.0
_CSV_HEADER = ",".join(CSV_COLUMNS)
# Same as hartool.wire.listen.LISTEN_SCHEMES (kept here so a serial open never imports the listeners).
_LISTEN_SCHEMES = ("tcp-listen", "udp", "http", "mqtt", "mqtts")


class DeviceGone(WireError):
    """The device disappeared while reading (unplugged, reset, socket closed): the port is unusable now."""


@runtime_checkable
class Port(Protocol):
    """What the reader, the recorder and the tests need from a byte source.

    * ``read(n)`` returns 1..n bytes as soon as any are available, ``b""`` when none arrived within the
      port's timeout, and raises :class:`DeviceGone` when the device disappeared.
    * ``is_file``: the bytes are a finite recording (file replay, stdin redirected from a file). Such a
      source starts at a record boundary, is read as fast as the consumer asks, and is never reconnected.
    * ``eof``: becomes True once a finite source is exhausted (end of file, stdin closed); ``read`` then
      returns ``b""`` immediately. Live serial ports never set it: for them the end is ``DeviceGone``.
    * ``write(data)`` sends host command bytes (at most ``WRITE_TIMEOUT_S`` of waiting; may be called from
      another thread than ``read``); it raises :class:`DeviceGone` when the device is gone and
      :class:`WireError` when it does not take the bytes in time. Sources that cannot take commands (files,
      stdin) discard them and return 0.
    """

    name: str
    is_file: bool

    @property
    def eof(self) -> bool: ...

    def read(self, n: int) -> bytes: ...

    def write(self, data: bytes) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SerialPortInfo:
    """A serial port the OS lists, as ``serial.tools.list_ports`` describes it."""

    device: str
    description: str
    vid: int | None = None
    pid: int | None = None
    manufacturer: str | None = None
    serial_number: str | None = None

    @property
    def usb(self) -> bool:
        return self.vid is not None

    def label(self) -> str:
        """``/dev/ttyACM0 (Arduino Uno, 2341:0043)``: what a hint shows for this port."""
        parts = [p for p in (self.description if self.description not in ("", "n/a") else None,
                             f"{self.vid:04x}:{self.pid or 0:04x}" if self.usb else None) if p]
        return f"{self.device} ({', '.join(parts)})" if parts else self.device


def list_serial_ports() -> list[SerialPortInfo]:
    """Every serial port the OS reports (pyserial's ``list_ports``: USB VID/PID, description), by device name."""
    found = [
        SerialPortInfo(p.device, p.description or "", p.vid, p.pid, p.manufacturer, p.serial_number)
        for p in list_ports.comports()
    ]
    return sorted(found, key=lambda p: p.device)


def candidate_ports() -> list[SerialPortInfo]:
    """Ports a board usually is: USB devices (CDC-ACM, USB-UART bridges) and Bluetooth serial (rfcomm)."""
    return [p for p in list_serial_ports() if p.usb or "rfcomm" in p.device]


def _open_hint(spec: str, code: int | None) -> str:
    if code == errno.ENOENT:
        others = [p for p in candidate_ports() if p.device != spec]
        if others:
            return f"is the board plugged in? try --port {others[0].label()}"
        return "is the board plugged in? no USB serial device is connected"
    if code in (errno.EACCES, errno.EPERM):
        return "add yourself to the dialout group: sudo usermod -aG dialout $USER, then log out and in"
    if code == errno.EBUSY:
        return "another program (a serial monitor, ModemManager) has the port open"
    if code == errno.ECONNREFUSED:
        return "is the server listening?"
    return ""


def _open_error(spec: str, exc: BaseException, hints: bool = True) -> WireError:
    """One clear line for a port that does not open, with a hint for the usual causes."""
    code = getattr(exc, "errno", None)
    if code is None and isinstance(exc.__cause__ or exc.__context__, OSError):
        code = getattr(exc.__cause__ or exc.__context__, "errno", None)
    if code is None:
        # pyserial's socket handler only keeps the text: "Could not open port ...: [Errno 111] ..."
        text = str(exc)
        for known in (errno.ECONNREFUSED, errno.ENOENT, errno.EACCES, errno.EBUSY):
            if f"[Errno {known}]" in text:
                code = known
    if isinstance(code, int) and code > 0:
        detail = f"[Errno {code}] {os.strerror(code)}"
    else:
        detail = str(exc)
        for prefix in ("could not open port ", "Could not open port "):
            if detail.startswith(prefix) and ": " in detail:
                detail = detail.split(": ", 1)[1]
    hint = _open_hint(spec, code if isinstance(code, int) else None) if hints else ""
    return WireError(f"cannot open {spec}: {detail}" + (f" ({hint})" if hint else ""))


def _gone(name: str, exc: BaseException) -> DeviceGone:
    """'device X disconnected', with the OS reason when there is one (pyserial's own texts add nothing)."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return DeviceGone(f"device {name} disconnected ([Errno {code}] {os.strerror(code)})")
    text = str(exc)
    if not text or "disconnected" in text or "returned no data" in text:
        return DeviceGone(f"device {name} disconnected")
    return DeviceGone(f"device {name} disconnected ({text})")


class SerialPort:
    """A pyserial port (device path or URL) with ``read`` that never waits for more than the port timeout.

    pyserial's ``read(n)`` waits until n bytes arrived or the timeout passed, which would add up to one
    timeout of latency at low sample rates. Ports with a file descriptor (ttys, ``socket://``) are opened
    non-blocking and waited on with ``select``; the others (``loop://``, ``rfc2217://``) read
    ``in_waiting`` bytes, or one byte with the timeout when nothing is waiting.
    """

    is_file = False

    def __init__(
        self,
        spec: str,
        baud: int = DEFAULT_BAUD,
        timeout: float = 0.05,
        dtr: bool | None = True,
        rts: bool | None = None,
    ) -> None:
        self.name = spec
        self.spec = spec
        self.baud = baud
        self.timeout = timeout
        self.dtr = dtr
        self.rts = rts
        try:
            ser = serial.serial_for_url(spec, do_not_open=True)
        except (ValueError, serial.SerialException) as exc:
            raise _open_error(spec, exc) from exc
        # pyserial classes inherit io.RawIOBase.fileno (which raises) unless they have a real descriptor.
        self._selectable = type(ser).fileno is not io.RawIOBase.fileno
        ser.baudrate = baud
        ser.timeout = 0 if self._selectable else timeout
        ser.write_timeout = WRITE_TIMEOUT_S  # a device that stops reading must not hang a host command
        # Before open(): opening applies these, and many boards reset on a DTR edge (Arduino auto-reset).
        if dtr is not None:
            ser.dtr = dtr
        if rts is not None:
            ser.rts = rts
        try:
            ser.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise _open_error(spec, exc) from exc
        self._ser = ser
        self._write_lock = threading.Lock()
        self._fd = ser.fileno() if self._selectable else None

    @property
    def eof(self) -> bool:
        return False

    @property
    def serial(self) -> serial.SerialBase:
        """The underlying pyserial object (for settings this class does not wrap)."""
        return self._ser

    def read(self, n: int) -> bytes:
        ser = self._ser
        try:
            if self._fd is not None:
                ready, _, _ = select.select([self._fd], [], [], self.timeout)
                if not ready:
                    return b""
                # timeout=0: returns what is there (at most n) without waiting for the rest.
                data = ser.read(n)
            else:
                waiting = ser.in_waiting
                data = ser.read(min(n, waiting) if waiting else 1)
                if data and not waiting:
                    more = ser.in_waiting
                    if more:
                        data += ser.read(min(n - len(data), more))
        except (serial.SerialException, OSError, ValueError, TypeError) as exc:
            # ValueError/TypeError: pyserial touching a descriptor that another thread just closed.
            raise _gone(self.name, exc) from exc
        return data

    def write(self, data: bytes) -> int:
        # Writes come from another thread than reads (host commands while the reader owns the port); the lock
        # keeps close() from pulling the descriptor out from under a write in progress.
        with self._write_lock:
            if not self._ser.is_open:
                raise DeviceGone(f"device {self.name} is closed")
            try:
                written = self._ser.write(data)
            except serial.SerialTimeoutException as exc:
                raise WireError(f"write to {self.name} timed out (the device does not read)") from exc
            except (serial.SerialException, OSError, ValueError, TypeError) as exc:
                raise _gone(self.name, exc) from exc
        return int(written or 0)

    def close(self) -> None:
        with self._write_lock:
            try:
                self._ser.close()
            except (serial.SerialException, OSError):
                pass  # closing a port whose device vanished: nothing left to release

    def reopen(self) -> SerialPort:
        """A fresh port on the same spec with the same settings (raises :class:`WireError` if it won't open)."""
        return SerialPort(self.spec, self.baud, self.timeout, self.dtr, self.rts)

    def __repr__(self) -> str:
        return f"SerialPort({self.spec!r}, baud={self.baud})"


class _FdPort:
    """Shared read logic for sources that are a plain file descriptor (stdin, files)."""

    name = ""
    is_file = True

    def __init__(self, fd: int, timeout: float) -> None:
        self._fd = fd
        self.timeout = timeout
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

    def write(self, data: bytes) -> int:
        return 0  # a recording cannot take host commands


class StdinPort(_FdPort):
    """Bytes piped into ``hartool`` (``-``); read with ``select`` + ``os.read`` so a read never blocks."""

    def __init__(self, timeout: float = 0.05, fd: int | None = None) -> None:
        if fd is None:
            if sys.stdin is None:
                raise WireError("cannot read stdin: there is none")
            fd = sys.stdin.fileno()
        super().__init__(fd, timeout)
        self.name = "stdin"
        # Redirected from a regular file: a complete recording. A pipe may start mid-record (`cat /dev/tty`).
        self.is_file = stat.S_ISREG(os.fstat(fd).st_mode)

    def close(self) -> None:
        pass  # stdin belongs to the process


class FilePort(_FdPort):
    """Replay of a raw byte capture (text lines or binary frames), as fast as it is read."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 0.05) -> None:
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise _open_error(str(path), exc, hints=False) from exc
        super().__init__(fd, timeout)
        self.name = str(path)
        self.path = path

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._eof = True


class RecordingReplayPort:
    """Replay of a ``hartool record`` CSV file as the text lines a device would send (``t_ms,6 values``).

    The file is parsed (and checked) by :func:`read_csv_session`, so ``# units:`` are converted to g and
    rad/s like the dataset loader does; labels are dropped and ``t_s`` becomes integer milliseconds.
    Values are written with 9 significant digits, which round-trips float32 exactly.
    """

    is_file = True
    _LINES_PER_FILL = 512

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = str(self.path)
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

    def write(self, data: bytes) -> int:
        return 0  # a recording cannot take host commands

    def close(self) -> None:
        self._next = len(self._values)
        self._buf.clear()


def _is_csv_recording(path: Path) -> bool:
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


def open_port(
    spec: str,
    baud: int = DEFAULT_BAUD,
    timeout: float = 0.05,
    dtr: bool | None = True,
    rts: bool | None = None,
    reconnect: bool = False,
) -> Port:
    """Open a byte source from a ``--port`` value.

    * ``tcp-listen://``, ``udp://``, ``http://``, ``mqtt://``: a listening source
      (:func:`hartool.wire.listen.open_listen_port`; ``reconnect`` lets an MQTT broker be away at start).
    * ``-``: stdin (binary).
    * ``file:PATH`` or a path to a regular file: replay. A ``hartool record`` CSV is replayed as text lines
      with a millisecond timestamp column; any other file is replayed as the raw bytes it holds.
    * anything else: a serial device path (``/dev/ttyACM0``, ``/dev/pts/5``) or a pyserial URL
      (``socket://HOST:PORT``, ``rfc2217://HOST:PORT``, ``loop://``), opened at ``baud`` with DTR/RTS set
      before opening (``None`` leaves pyserial's default).

    Raises :class:`WireError` with one line saying why (and what to try) when it cannot be opened.
    """
    text = str(spec).strip()
    if not text:
        raise WireError("no port given (e.g. --port /dev/ttyACM0)")
    if text == "-":
        return StdinPort(timeout=timeout)
    if text.split("://", 1)[0].lower() in _LISTEN_SCHEMES and "://" in text:
        from hartool.wire.listen import open_listen_port

        return open_listen_port(text, timeout=timeout, reconnect=reconnect)
    path: Path | None = None
    if text.startswith("file:"):
        path = Path(text[len("file:") :]).expanduser()
        if not path.is_file():
            raise WireError(f"cannot open {text}: no such file")
    elif "://" not in text:
        candidate = Path(text).expanduser()
        try:
            if stat.S_ISREG(candidate.stat().st_mode):
                path = candidate
        except OSError:
            path = None  # not there: let the serial open produce the helpful message
    if path is not None:
        return RecordingReplayPort(path) if _is_csv_recording(path) else FilePort(path, timeout=timeout)
    return SerialPort(text, baud=baud, timeout=timeout, dtr=dtr, rts=rts)
