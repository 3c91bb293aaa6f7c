"""Test helpers shared across rooms: run the real CLI, wait for a condition, build a tiny bundle once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAFETY_S = 60.0  # every wait ends at the latest after this; never an assertion on speed

# Each fixture run trains on few windows for one epoch: numbers are checked by floors, never by speed.
TINY_TRAIN = ["--epochs", "2", "--max-windows", "600", "--train-stride", "32", "--quiet", "--seed", "0"]


def wait_until(cond: Callable[[], Any], what: str = "condition", timeout: float = SAFETY_S,
               interval: float = 0.02) -> Any:
    """Poll ``cond`` until truthy and return its value; AssertionError after ``timeout`` s (a hang guard only)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def hartool(*args: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process (as a user would), returning its output."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "hartool", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"hartool {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def post(url: str, body: bytes, ctype: str = "application/json",
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    """POST ``body`` with a real HTTP client: (status, reply text), also for 4xx/5xx answers."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype, **(headers or {})}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=SAFETY_S) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
