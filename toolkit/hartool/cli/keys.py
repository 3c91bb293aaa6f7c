"""Single key presses from a terminal (cbreak mode: no Enter, no echo), turned into label-switch events.

The terminal part only: :class:`KeyReader` owns a file descriptor (a tty, a pseudo-terminal in tests, or a
pipe for scripts) and restores its mode on exit; :func:`pump_keys` maps ``1``..``9`` to labels, ``0`` to
none and ``q`` to stop, and puts label names on the queue the recorder (:mod:`hartool.wire.recorder`) drains.
"""

from __future__ import annotations

import os
import queue
import select
import threading
from collections.abc import Callable, Sequence
from typing import Any

STOP_KEYS = ("q", "Q")


class KeyReader:
    """Reads one key at a time from ``fd``; a terminal is put in cbreak mode while the reader is open."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: list[Any] | None = None

    def __enter__(self) -> KeyReader:
        if os.isatty(self.fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            # cbreak keeps Ctrl-C working (ISIG) but delivers keys at once, without echo.
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def read(self, timeout: float) -> str | None:
        """The next key, None after ``timeout`` seconds without one; EOFError when the source closed."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return None
        try:
            data = os.read(self.fd, 1)
        except OSError as exc:  # a pty whose other side closed reports EIO
            raise EOFError(str(exc)) from exc
        if not data:
            raise EOFError("key source closed")
        return data.decode("latin-1")


def label_for_key(key: str, labels: Sequence[str]) -> str | None:
    """``"1"`` -> labels[0] ... ``"9"`` -> labels[8], ``"0"`` -> ``""`` (none); other keys -> None (ignored)."""
    if key == "0":
        return ""
    if key.isdigit() and 1 <= int(key) <= len(labels):
        return labels[int(key) - 1]
    return None


def key_help(labels: Sequence[str]) -> str:
    """``1 WALKING, 2 SITTING, 0 none, q stop``."""
    return ", ".join([f"{i} {name}" for i, name in enumerate(labels, start=1)] + ["0 none", "q stop"])


def pump_keys(reader: KeyReader, labels: Sequence[str], events: queue.Queue[str], stop: threading.Event,
              on_switch: Callable[[str], None] | None = None, poll_s: float = 0.1) -> None:
    """Until ``stop`` is set or the key source ends: label keys go to ``events``, ``q`` sets ``stop``."""
    while not stop.is_set():
        try:
            key = reader.read(poll_s)
        except EOFError:
            return  # no more keys (a closed pipe): the recording goes on with the current label
        if key is None:
            continue
        if key in STOP_KEYS:
            stop.set()
            return
        label = label_for_key(key, labels)
        if label is not None:
            events.put(label)
            if on_switch is not None:
                on_switch(label)


def start_key_thread(reader: KeyReader, labels: Sequence[str], events: queue.Queue[str], stop: threading.Event,
                     on_switch: Callable[[str], None] | None = None) -> threading.Thread:
    """:func:`pump_keys` on a daemon thread (it blocks in select for at most 0.1 s at a time)."""
    thread = threading.Thread(target=pump_keys, args=(reader, labels, events, stop, on_switch),
                              name="hartool-keys", daemon=True)
    thread.start()
    return thread
