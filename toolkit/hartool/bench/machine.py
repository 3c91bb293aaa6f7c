"""Describe the machine a benchmark ran on (CPU, cores, OS, package versions) without heavy imports."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# Distribution names whose versions change latency; read from metadata so TensorFlow is never imported.
PACKAGES = ("hartool", "numpy", "ai-edge-litert", "tflite-runtime", "onnxruntime", "tensorflow",
            "tensorflow-cpu", "keras", "matplotlib")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """``{distribution: version}``; None for a package that is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip("\x00\n ")
    except OSError:
        return None


def cpu_model() -> str:
    """A human name for the CPU: /proc/cpuinfo on Linux, sysctl on macOS, platform.processor() otherwise."""
    info = _read("/proc/cpuinfo")
    if info:
        fields: dict[str, str] = {}
        for line in info.splitlines():
            key, sep, value = line.partition(":")
            if sep and value.strip():
                fields.setdefault(key.strip(), value.strip())
        # x86 says "model name"; a Raspberry Pi's aarch64 kernel often says only "Model" (the board)
        # or "Hardware".
        for key in ("model name", "Model", "Hardware", "Processor", "cpu model"):
            if key in fields:
                return fields[key]
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                 timeout=5, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        if out:
            return out
    return platform.processor() or platform.machine() or "unknown"


def _memory_mb() -> float | None:
    meminfo = _read("/proc/meminfo") or ""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024.0, 1)
    return None


def machine_info() -> dict[str, Any]:
    """Everything needed to tell two result files' machines apart; cheap and import-free."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity API
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        # A Pi's device tree names the board ("Raspberry Pi 4 Model B Rev 1.4"); None elsewhere.
        "board": _read("/proc/device-tree/model"),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "arch": platform.machine(),
        "os": platform.platform(),
        "memory_mb": _memory_mb(),
        # "ondemand" vs "performance" moves Pi latencies by tens of percent.
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(),
    }


def machine_summary(machine: dict[str, Any]) -> str:
    """One line for status output and compare headers."""
    pkgs = machine.get("packages") or {}
    runtimes = ", ".join(f"{short} {pkgs[name]}" for name, short in
                         (("ai-edge-litert", "litert"), ("tflite-runtime", "tflite-runtime"),
                          ("onnxruntime", "ort")) if pkgs.get(name))
    board = f" ({machine['board']})" if machine.get("board") else ""
    return (f"{machine.get('cpu_model')}{board}, {machine.get('cores')} cores, {machine.get('arch')}, "
            f"Python {machine.get('python')}" + (f", {runtimes}" if runtimes else ""))
