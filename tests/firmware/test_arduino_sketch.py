"""The Arduino sketch builds for a real board (Uno, AVR) when Debian's Arduino toolchain is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hartool_fw_support import BRIDGE, SETUP_HINT

AVR_CORE = Path("/usr/share/arduino/hardware/arduino/avr")


@pytest.mark.parametrize("fqbn", ["arduino:avr:uno", "arduino:avr:nano:cpu=atmega328"])
def test_sketch_compiles_for_avr(tmp_path, fqbn):
    if shutil.which("arduino-builder") is None or not AVR_CORE.is_dir():
        pytest.skip(f"arduino-builder / arduino-core-avr not installed ({SETUP_HINT})")
    result = subprocess.run(
        ["bash", str(BRIDGE / "arduino" / "build_avr.sh"), fqbn, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "Sketch uses" in log
    # -warnings all: the core has warnings of its own, ours must have none.
    ours = [
        line for line in log.splitlines() if "hartool_" in line and ("warning" in line or "error" in line)
    ]
    assert not ours, "\n".join(ours)
