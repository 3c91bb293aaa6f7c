"""hartool: train, quantize, benchmark and stream Human Activity Recognition models on the edge.

The Python API (``open_session``, ``Session``, ``classify``, ``Classifier``, ``SourceSpec``) is loaded on
first use: ``import hartool`` itself imports nothing heavy (no numpy, no interpreter, no TensorFlow).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["Classifier", "Session", "SourceSpec", "__version__", "classify", "open_session"]

# name -> module that defines it, imported when the name is first used.
_API = {
    "open_session": "hartool.runtime.session",
    "Session": "hartool.runtime.session",
    "classify": "hartool.runtime.session",
    "Classifier": "hartool.runtime.session",
    "SourceSpec": "hartool.wire.spec",
}


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'hartool' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
