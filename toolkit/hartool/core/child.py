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


# Names of the TensorFlow settings (threads, oneDNN's instruction set) that training pinned in this process's
# environment itself, comma-separated; values a user set are never listed (hartool.train.tflog sets it).
PINNED_TF_ENV_VAR = "HARTOOL_PINNED_TF_ENV"


def child_env(tf_defaults: bool = False) -> dict[str, str]:
    """Environment for ``python -m hartool...`` children: quiet TensorFlow, and this very hartool on the path
    even when it runs from a source tree that is not installed.

    ``tf_defaults``: without the TensorFlow settings training pinned here, so a child that times TensorFlow
    (the Keras baseline) runs it as `hartool benchmark` and a user's script do, whichever command started it
    (under `demo` it would otherwise inherit training's two threads).
    """
    src = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if tf_defaults:
        for key in env.pop(PINNED_TF_ENV_VAR, "").split(","):
            env.pop(key, None)
    return env
