"""Microcontroller targets for an exported C library (`hartool export c`): cross builds, sizes, and on
Cortex-M4 a run under qemu (mps2-an386) with instruction counts from `-icount` and SysTick; and the host build
as a shared object called through ctypes (:class:`HostLibrary`: the board's arithmetic on this machine, which
`hartool simulate --classify` runs as its classifying board).

What is measured and what is estimated: flash and RAM are the library's own sections (text, rodata, data,
bss; the arena is inside bss) from the cross compiler's `size`; the stack is a painted high-water mark under
qemu; instructions per window come from qemu's instruction counter. The time at a clock assumes one
instruction per cycle (a Cortex-M4 spends more on loads and branches: a lower bound, not a measurement).
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import HartoolError

CFLAGS = ["-std=c99", "-ffp-contract=off", "-ffunction-sections", "-fdata-sections"]
OPT = "-O2"  # the default; the benchmark also reports -O3 and -Os
ICOUNT_SHIFT = 3
APT = "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf"


@dataclass(frozen=True)
class Target:
    name: str
    cc: str
    size: str
    flags: list[str] = field(default_factory=list)
    qemu: list[str] | None = None
    core: str = ""


TARGETS = {
    "cortex-m4": Target("cortex-m4", "arm-none-eabi-gcc", "arm-none-eabi-size",
                        ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
                        ["qemu-system-arm", "-M", "mps2-an386"], "Cortex-M4F (nRF52840, STM32F4)"),
    "cortex-m0plus": Target("cortex-m0plus", "arm-none-eabi-gcc", "arm-none-eabi-size",
                            ["-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"], None, "Cortex-M0+ (RP2040, SAMD21)"),
    "rv32imc": Target("rv32imc", "riscv64-unknown-elf-gcc", "riscv64-unknown-elf-size",
                      ["-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs"], None, "RV32IMC (ESP32-C3)"),
}


class McuError(HartoolError):
    """A missing toolchain or a failed cross build / qemu run."""


def support_file(name: str) -> Path:
    """The harness, startup code and linker script shipped in `bench/mcu_support/`."""
    return Path(str(resources.files(__package__).joinpath("mcu_support").joinpath(name)))


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise McuError(f"{tool} not found; install: apt-get install --no-install-recommends {APT}")
    return path


def _run(cmd: list[str], timeout: float, stdin: bytes | None = None) -> bytes:
    try:
        res = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise McuError(f"{Path(cmd[0]).name} timed out after {timeout:.0f} s") from exc
    if res.returncode != 0:
        err = res.stderr.decode("utf-8", "replace").strip().splitlines()
        raise McuError(f"{Path(cmd[0]).name} failed: {err[-1] if err else res.returncode}")
    return res.stdout


def library_sizes(src: Path, target: Target, work: Path, timeout: float = 300, opt: str = OPT) -> dict[str, int]:
    """Sections of the library's objects for ``target``: text, rodata, data, bss (bytes)."""
    work.mkdir(parents=True, exist_ok=True)
    objs = []
    for c in sorted(src.glob("*.c")):
        obj = work / f"{c.stem}.{target.name}.o"
        _run([require(target.cc), *target.flags, opt, *CFLAGS, "-c", str(c), "-o", str(obj)], timeout)
        objs.append(str(obj))
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for line in _run([require(target.size), "-A", *objs], timeout).decode().splitlines():
        m = re.match(r"\.(text|rodata|s?data|s?bss|srodata)\S*\s+(\d+)", line)
        if m:
            kind = {"sdata": "data", "sbss": "bss", "srodata": "rodata"}.get(m.group(1), m.group(1))
            sizes[kind] += int(m.group(2))
    return sizes


def _windows_c(windows: np.ndarray) -> str:
    rows = ",\n".join("{" + ",".join(f"{float(v)!r}f" for v in w.ravel()) + "}" for w in windows)
    n = len(windows)
    return (f"const int hartool_test_window_count = {n};\n"
            f"const float hartool_test_windows[{n}][{windows[0].size}] = {{\n{rows}\n}};\n")


def parse_harness(text: str) -> dict[str, Any]:
    """The harness's lines: per-window label, output bytes (hex) and SysTick ticks; calibration; stack."""
    labels, outputs, ticks = [], [], []
    info: dict[str, Any] = {}
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["calibration"]:
            info["ticks_per_1024_instructions"] = int(parts[1])
        elif parts[:1] == ["stack"]:
            info["stack_bytes"] = int(parts[1])
        elif parts[:1] == ["op"]:
            info.setdefault("op_ticks", []).append(int(parts[2]))
        elif len(parts) == 4:
            labels.append(int(parts[1]))
            ticks.append(int(parts[2]))
            outputs.append(bytes.fromhex(parts[3]))
    return {"labels": np.array(labels), "outputs": outputs, "ticks": np.array(ticks), **info}


def run_host(src: Path, windows: np.ndarray, work: Path, timeout: float = 600) -> dict[str, Any]:
    """Build the library with the host gcc and classify ``windows`` (n, window, channels) float32."""
    work.mkdir(parents=True, exist_ok=True)
    exe = work / "host_harness"
    _run([require("gcc"), OPT, *CFLAGS, f"-I{src}", "-o", str(exe), str(support_file("harness.c")),
          *sorted(str(c) for c in src.glob("*.c")), "-lm"], timeout)
    out = _run([str(exe)], timeout, stdin=np.ascontiguousarray(windows, dtype=np.float32).tobytes())
    return parse_harness(out.decode())


def run_cortex_m4(src: Path, windows: np.ndarray, work: Path, timeout: float = 600,
                  profile: bool = False, opt: str = OPT) -> dict[str, Any]:
    """Cross-build the library with ``windows`` linked in and run it under qemu's mps2-an386 with -icount;
    with ``profile``, also instructions per window of each graph op ("op_instructions", in graph order; the
    per-op hooks add a few instructions, so the total comes from a build without them)."""
    target = TARGETS["cortex-m4"]
    work.mkdir(parents=True, exist_ok=True)
    (work / "windows.c").write_text(_windows_c(np.asarray(windows, dtype=np.float32)))
    elf = work / "prog.elf"
    _run([require(target.cc), *target.flags, opt, *CFLAGS, "--specs=nano.specs", "--specs=rdimon.specs", "-nostartfiles",
          "-T", str(support_file("link.ld")), "-DHARTOOL_WINDOWS_LINKED", "-DHARTOOL_SYSTICK",
          *(["-DHARTOOL_PROFILE"] if profile else []), f"-I{src}",
          str(support_file("startup.c")), str(support_file("harness.c")), *sorted(str(c) for c in src.glob("*.c")),
          str(work / "windows.c"), "-lm", "-Wl,--gc-sections", "-o", str(elf)], timeout)
    qemu = [require(target.qemu[0]), *target.qemu[1:], "-nographic", "-semihosting",
            "-icount", f"shift={ICOUNT_SHIFT},align=off", "-kernel", str(elf)]
    res = parse_harness(_run(qemu, timeout).decode())
    if "ticks_per_1024_instructions" not in res or len(res["labels"]) != len(windows):
        raise McuError(f"qemu run printed {len(res['labels'])} of {len(windows)} windows")
    per_tick = 1024.0 / res["ticks_per_1024_instructions"]
    res["instructions"] = res["ticks"] * per_tick
    if profile:
        res["op_instructions"] = [t * per_tick / len(windows) for t in res.get("op_ticks", [])]
    return res


def target_row(src: Path, name: str, work: Path, windows: np.ndarray | None = None,
               clock_hz: float = 64e6) -> dict[str, Any]:
    """One benchmark row for ``name``; with ``windows`` on cortex-m4, also the qemu run checked against the host."""
    target = TARGETS[name]
    sizes = library_sizes(src, target, work / name)
    row: dict[str, Any] = {"target": name, "core": target.core, **sizes,
                           "flash_bytes": sizes["text"] + sizes["rodata"] + sizes["data"],
                           "static_ram_bytes": sizes["data"] + sizes["bss"], "stack_bytes": None,
                           "instructions_per_window": None, "ms_at_clock": None, "clock_hz": clock_hz,
                           "windows_run": 0, "equal_to_host": None}
    if windows is not None and target.qemu is not None:
        board = run_cortex_m4(src, windows, work / name)
        host = run_host(src, windows, work / "host")
        inst = float(np.mean(board["instructions"]))
        row.update(stack_bytes=board["stack_bytes"], instructions_per_window=inst, windows_run=len(windows),
                   ms_at_clock=inst / clock_hz * 1e3,
                   equal_to_host=board["outputs"] == host["outputs"] and bool(np.all(board["labels"] == host["labels"])))
    return row


def _model_defines(src: Path) -> dict[str, int]:
    """The sizes hartool_model.h defines (HARTOOL_WINDOW, _STRIDE, _CHANNELS, _CLASSES)."""
    text = (src / "hartool_model.h").read_text(encoding="utf-8")
    found = {m.group(1): int(m.group(2)) for m in re.finditer(r"#define HARTOOL_(WINDOW|STRIDE|CHANNELS|CLASSES) (\d+)",
                                                                 text)}
    if len(found) != 4:
        raise McuError(f"{src / 'hartool_model.h'} does not define the window, stride, channels and classes")
    return found


# Compiled into the host shared object beside the library: the stream state's size and a push that copies the
# result out, so Python never mirrors the C structs' layout.
_HOST_SHIM = """#include <string.h>
#include "hartool_model.h"
size_t hartool_host_stream_bytes(void) { return sizeof(hartool_stream); }
int hartool_host_push(hartool_stream *s, const float *sample, int *label, float *probs, unsigned long *window) {
  hartool_result r;
  if (!hartool_stream_push(s, sample, &r)) return 0;
  *label = r.label;
  memcpy(probs, r.probs, sizeof r.probs);
  *window = r.window;
  return 1;
}
"""


class HostLibrary:
    """An exported library (``src``: its ``src/`` folder) built with the host gcc as a shared object.

    :meth:`classify` is ``hartool_classify`` on one window; :meth:`stream` returns a push function over a fresh
    ``hartool_stream`` (``hartool_stream_push``: the windowing the board does), one sample at a time.
    """

    def __init__(self, src: Path, work: Path, timeout: float = 600) -> None:
        dims = _model_defines(src)
        self.window, self.stride = dims["WINDOW"], dims["STRIDE"]
        self.channels, self.classes = dims["CHANNELS"], dims["CLASSES"]
        work.mkdir(parents=True, exist_ok=True)
        (work / "hartool_host_shim.c").write_text(_HOST_SHIM)
        so = work / "libhartool_model.so"
        _run([require("gcc"), *CFLAGS, "-shared", "-fPIC", f"-I{src}", "-o", str(so), str(work / "hartool_host_shim.c"),
              *sorted(str(c) for c in src.glob("*.c")), "-lm"], timeout)
        lib = ctypes.CDLL(str(so))
        floats = ctypes.POINTER(ctypes.c_float)
        lib.hartool_classify.argtypes = [floats, floats]
        lib.hartool_classify.restype = ctypes.c_int
        lib.hartool_host_stream_bytes.restype = ctypes.c_size_t
        lib.hartool_stream_init.argtypes = [ctypes.c_void_p]
        lib.hartool_host_push.argtypes = [ctypes.c_void_p, floats, ctypes.POINTER(ctypes.c_int), floats,
                                          ctypes.POINTER(ctypes.c_ulong)]
        lib.hartool_host_push.restype = ctypes.c_int
        self._lib = lib

    def classify(self, window: np.ndarray) -> tuple[int, np.ndarray]:
        """(label, float32 probabilities) of one (window, channels) window."""
        x = np.ascontiguousarray(window, dtype=np.float32)
        if x.shape != (self.window, self.channels):
            raise McuError(f"a window is {self.window} x {self.channels}, got {x.shape}")
        probs = np.zeros(self.classes, np.float32)
        fp = ctypes.POINTER(ctypes.c_float)
        label = self._lib.hartool_classify(x.ctypes.data_as(fp), probs.ctypes.data_as(fp))
        return int(label), probs

    def stream(self) -> Callable[[np.ndarray], tuple[int, int, list[float]] | None]:
        """A push function over a fresh stream: one sample in; (window, label, probs) when a window completes."""
        lib = self._lib
        state = ctypes.create_string_buffer(int(lib.hartool_host_stream_bytes()))
        lib.hartool_stream_init(state)
        label, window = ctypes.c_int(), ctypes.c_ulong()
        probs = np.zeros(self.classes, np.float32)
        fp = ctypes.POINTER(ctypes.c_float)
        probs_p = probs.ctypes.data_as(fp)

        def step(sample: np.ndarray) -> tuple[int, int, list[float]] | None:
            x = np.ascontiguousarray(sample, dtype=np.float32)
            if x.size != self.channels:  # the C side reads CHANNELS floats
                raise McuError(f"a sample has {self.channels} channels, got {x.size}")
            if not lib.hartool_host_push(state, x.ctypes.data_as(fp), ctypes.byref(label), probs_p,
                                         ctypes.byref(window)):
                return None
            return int(window.value), int(label.value), probs.tolist()

        return step
