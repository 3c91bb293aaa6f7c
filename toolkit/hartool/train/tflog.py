"""Import TensorFlow without its start-up log lines (oneDNN, CPU features, absl's "before InitializeLog").

TensorFlow's C++ side writes these to file descriptor 2 while its libraries load, before any log level can
apply (``TF_CPP_MIN_LOG_LEVEL`` no longer reaches them), once per library: they bury a command's own output.
The import is done once, with fd 2 pointed at /dev/null; a failing import still raises its Python error.
Used by the CLI (unless ``--debug``) and the child processes that import TensorFlow.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

__all__ = ["import_tensorflow_quietly"]


def import_tensorflow_quietly() -> None:
    """Import ``tensorflow`` (if installed and not yet imported) with its C++ start-up lines silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        try:
            importlib.import_module("tensorflow")
        except ImportError:
            pass  # the command that needs it says so, with the error, once stderr is back
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
