"""One line saying why a child process (converter, benchmark worker) failed, from its exit status and stderr."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def describe_exit(returncode: int, stderr: str, who: str = "") -> str:
    """``"{who}crashed (SIGSEGV, signal 11)"`` for a signal, else the last stderr line, else the exit status.

    The last line of a Python traceback (or a domain error the child printed) names the reason.
    """
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"{who}crashed ({name}, signal {-returncode})"
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return (lines[-1] if lines else f"{who}exited with status {returncode}")[:300]


def child_env() -> dict[str, str]:
    """Environment for ``python -m hartool...`` children: quiet TensorFlow, and this very hartool on the path
    even when it runs from a source tree that is not installed."""
    src = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}
