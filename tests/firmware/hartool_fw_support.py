"""Paths and loaders shared by the firmware tests.

A plain module rather than a conftest.py: the suite's top-level tests/conftest.py is imported by name
("from conftest import ...") and a second, nested conftest module would shadow it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BRIDGE = REPO / "firmware_bridge"
VECTORS = BRIDGE / "vectors"
MICROPYTHON = BRIDGE / "micropython"
ARDUINO_SKETCH = BRIDGE / "arduino" / "hartool_imu_stream"
# Where tests/setup_services.sh installs the MicroPython WebAssembly port (npm, into the gitignored .cache).
MICROPYTHON_MJS = (
    REPO / ".cache" / "npm" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript" / "micropython.mjs"
)
SETUP_HINT = "run tests/setup_services.sh"


def load_vectors(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def load_micropython_module(name: str, alias: str):
    """Import firmware_bridge/micropython/<name>.py under a unique alias (names like "main" are generic)."""
    spec = importlib.util.spec_from_file_location(alias, MICROPYTHON / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def micropython_modules() -> tuple:
    """(hartool_wire, main, imu) loaded from firmware_bridge/micropython/ under CPython."""
    # main.py does "import hartool_wire", so that module is registered under its own (unique) name.
    wire = sys.modules.get("hartool_wire") or load_micropython_module("hartool_wire", "hartool_wire")
    sys.modules["hartool_wire"] = wire
    return (
        wire,
        load_micropython_module("main", "hartool_fw_main"),
        load_micropython_module("imu", "hartool_fw_imu"),
    )
