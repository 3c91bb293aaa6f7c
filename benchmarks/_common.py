"""Shared helpers for the benchmark scripts: run the real CLI, describe the machine, format markdown tables."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def hartool(*args: str, timeout: float = 3600) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `hartool ARGS` with this interpreter; returns the process and its wall time in seconds."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hartool", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"hartool {' '.join(args)} failed with exit {proc.returncode}")
    return proc, took


def machine_line() -> str:
    """One line naming the machine, as RESULTS.md sections quote it."""
    from hartool.bench.machine import machine_info, machine_summary

    return machine_summary(machine_info())


def stamp(command: Sequence[str]) -> dict[str, Any]:
    return {"command": " ".join(command), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_line(), "python": platform.python_version()}


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` to ``path`` atomically (a stopped run leaves the previous file whole, never half of one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def save(name: str, doc: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    return write_json(RESULTS / name, doc)
