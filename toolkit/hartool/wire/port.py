"""The one base class of every byte source (serial, stdin, file replay, TCP, UDP, HTTP push, MQTT), and
:class:`DeviceGone`, the end of a live source.

What the reader, the recorder and the tests rely on:

* ``read(n)`` returns 1..n bytes as soon as any are available, ``b""`` when none arrived within the port's
  ``timeout``, and raises :class:`DeviceGone` when the device disappeared.
* ``is_file``: the bytes are a finite recording (file replay, stdin redirected from a file). Such a source
  starts at a record boundary, is read as fast as the consumer asks, and is never reconnected.
* ``eof``: becomes True once a finite source is exhausted; ``read`` then returns ``b""`` immediately. Live
  ports never set it: for them the end is :class:`DeviceGone`.
* ``listening``: the sender connects to us (a phone, a board on Wi-Fi); the reader waits for it to come back.
* ``reopenable``: after :class:`DeviceGone`, ``reopen()`` gives the same source back (a fresh serial open,
  the listener's next client); it raises :class:`WireError` when that is not possible yet.
* ``buffered``: a server thread of the port holds a bounded backlog and refuses at its door what does not
  fit; the reader then waits for its consumer rather than dropping what the port accepted.
* ``write(data)`` sends host command bytes (at most ``WRITE_TIMEOUT_S`` of waiting; may be called from
  another thread than ``read``); sources that cannot take commands discard them and return 0.
* ``counters()``: what the port counted (connections, refused messages, overflow, ...), shared with the
  ports its ``reopen()`` returns; ``peer`` names the current sender where the transport knows one.
* ``time_unit``: the unit of the timestamps the port itself writes (a replayed recording: ``ms``), None
  when the device's own; the reader hands it to the decoder unless the user named one.
* ``take_notes()``: one line per kind of refusal at the door (the first of each kind, with the peer), for
  the reader to pass on; the rest of that kind is only counted.
"""

from __future__ import annotations

import re
import threading

from hartool.core.errors import WireError

__all__ = ["WRITE_TIMEOUT_S", "Counters", "DeviceGone", "Port", "printable"]

WRITE_TIMEOUT_S = 1.0


class DeviceGone(WireError):
    """The device disappeared while reading (unplugged, reset, socket closed): the port is unusable now."""


_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def printable(text: object, cap: int = 80) -> str:
    """A peer-supplied string made safe for a terminal or a log line: control bytes replaced, length capped."""
    s = _UNPRINTABLE.sub("?", str(text))
    return s if len(s) <= cap else s[: cap - 3] + "..."


class Counters:
    """Integer counters that several threads add to (a server thread, paho's loop, the reader), and the
    one-line notes of the first refusal of each kind."""

    def __init__(self, *names: str) -> None:
        self._values = dict.fromkeys(names, 0)
        self._lock = threading.Lock()
        self._noted: set[str] = set()
        self._notes: list[str] = []

    def refuse(self, key: str, message: str) -> None:
        """Count a refusal under ``key``; the first one of each key is also kept as a note."""
        with self._lock:
            self._values[key] = self._values.get(key, 0) + 1
            if key not in self._noted:
                self._noted.add(key)
                self._notes.append(message)

    def take_notes(self) -> list[str]:
        with self._lock:
            notes, self._notes = self._notes, []
            return notes

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._values[key] = self._values.get(key, 0) + n

    def set(self, key: str, value: int) -> None:
        with self._lock:
            self._values[key] = value

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


class Port:
    """Base class of byte sources (see the module docstring for the contract)."""

    is_file = False
    listening = False
    reopenable = False
    #: The port holds a bounded backlog of its own that refuses what does not fit (HTTP 503, MQTT overflow):
    #: the reader then waits for its consumer instead of dropping what the port already accepted.
    buffered = False
    #: Unit of the timestamps this port writes itself (None: the device's, detected or given by the user).
    time_unit: str | None = None

    def __init__(self, name: str, timeout: float = 0.05, counters: Counters | None = None) -> None:
        self.name = name
        self.timeout = timeout
        self.peer: str | None = None
        self.tally = counters if counters is not None else Counters()

    @property
    def eof(self) -> bool:
        return False

    def read(self, n: int) -> bytes:
        raise NotImplementedError

    def write(self, data: bytes) -> int:
        return 0  # no channel back to the sender

    def close(self) -> None:
        """Release the source (idempotent)."""

    def reopen(self) -> Port:
        raise WireError(f"{self.name} cannot be reopened")

    def counters(self) -> dict[str, int]:
        return self.tally.snapshot()

    def take_notes(self) -> list[str]:
        return self.tally.take_notes()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
