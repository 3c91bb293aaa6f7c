"""Test helpers shared across rooms: run the real CLI, and build a tiny trained/quantized bundle once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Each fixture run trains on few windows for one epoch: numbers are checked by floors, never by speed.
TINY_TRAIN = ["--epochs", "2", "--max-windows", "600", "--train-stride", "32", "--quiet", "--seed", "0"]


def hartool(*args: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process (as a user would), returning its output."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "hartool", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"hartool {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc
