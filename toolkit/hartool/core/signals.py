"""SIGTERM and SIGHUP as Ctrl-C: long-running commands end the same way whoever stops them.

``systemctl stop`` and ``docker stop`` send SIGTERM, closing an SSH session sends SIGHUP; Python's default
for both is to die on the spot, without the summary, the flushed windows or the complete output file
that Ctrl-C gives. Inside :func:`interrupt_on_signals` both raise ``KeyboardInterrupt`` in the main thread
instead, once: a second one during the clean-up is ignored, so the clean-up is not cut short (SIGKILL
stays the hard stop).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["STOP_SIGNALS", "interrupt_on_signals"]

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopSignal(KeyboardInterrupt):
    """A KeyboardInterrupt that came from SIGTERM or SIGHUP; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def interrupt_on_signals(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, the first of ``signals`` raises :class:`StopSignal` (a KeyboardInterrupt).

    Outside the main thread (where Python cannot install handlers) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if fired.is_set():
            return  # already stopping: let the clean-up finish
        fired.set()
        raise StopSignal(signum)

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
