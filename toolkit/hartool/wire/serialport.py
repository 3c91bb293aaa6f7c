"""Serial ports and pyserial URLs (``/dev/ttyACM0``, ``socket://``, ``rfc2217://``, ``loop://``) as a :class:`Port`,
the OS's list of serial ports, and the one-line open errors with their usual fixes."""

from __future__ import annotations

import errno
import io
import os
import select
import threading
from dataclasses import dataclass

import serial
from serial.tools import list_ports

from hartool.core.errors import WireError
from hartool.wire.port import WRITE_TIMEOUT_S, DeviceGone, Port

__all__ = [
    "DEFAULT_BAUD",
    "SerialPort",
    "SerialPortInfo",
    "candidate_ports",
    "list_serial_ports",
    "open_error",
]

DEFAULT_BAUD = 115200


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


def open_error(spec: str, exc: BaseException, hints: bool = True) -> WireError:
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


class SerialPort(Port):
    """A pyserial port (device path or URL) with ``read`` that never waits for more than the port timeout.

    pyserial's ``read(n)`` waits until n bytes arrived or the timeout passed, which would add up to one
    timeout of latency at low sample rates. Ports with a file descriptor (ttys, ``socket://``) are opened
    non-blocking and waited on with ``select``; the others (``loop://``, ``rfc2217://``) read
    ``in_waiting`` bytes, or one byte with the timeout when nothing is waiting.
    """

    reopenable = True

    def __init__(
        self,
        spec: str,
        baud: int = DEFAULT_BAUD,
        timeout: float = 0.05,
        dtr: bool | None = True,
        rts: bool | None = None,
    ) -> None:
        super().__init__(spec, timeout)
        self.spec = spec
        self.baud = baud
        self.dtr = dtr
        self.rts = rts
        try:
            ser = serial.serial_for_url(spec, do_not_open=True)
        except (ValueError, serial.SerialException) as exc:
            raise open_error(spec, exc) from exc
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
            raise open_error(spec, exc) from exc
        self._ser = ser
        self._write_lock = threading.Lock()
        self._fd = ser.fileno() if self._selectable else None

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
