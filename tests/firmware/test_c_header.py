"""The Arduino framing header (hartool_frame.h), compiled on the host, reproduces every vector exactly."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hartool_fw_support import ARDUINO_SKETCH, SETUP_HINT, load_vectors

RUNNER_C = Path(__file__).resolve().parent / "c" / "vector_runner.c"
HEADER = ARDUINO_SKETCH / "hartool_frame.h"
CC = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
CXX = next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion", "-Wshadow"]


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> Path:
    if CC is None:
        pytest.skip("no C compiler (cc/gcc/clang) on this machine")
    exe = tmp_path_factory.mktemp("cbuild") / "vector_runner"
    cmd = [CC, *STRICT, "-O2", f"-I{ARDUINO_SKETCH}", "-o", str(exe), str(RUNNER_C), "-lm"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return exe


def _num(v: float) -> str:
    return repr(float(v))


def _commands() -> tuple[list[str], list[str]]:
    """(stdin lines for the runner, the expected output line for each), from the committed vectors."""
    prim = load_vectors("primitives.json")
    cmds, expected = [], []
    for c in prim["crc16"]:
        cmds.append(f"crc {c['data_hex'] or '-'}")
        expected.append(f"{c['crc']:04x}")
    for c in prim["cobs"]:
        cmds.append(f"cobs {c['data_hex'] or '-'}")
        expected.append(c["encoded_hex"])
    for c in load_vectors("text_lines.json")["cases"]:
        ts = c["t_ms"] is not None
        vals = " ".join(_num(v) for v in c["values"])
        cmds.append(f"text {int(ts)} {c['t_ms'] or 0} {c['decimals']} {len(c['values'])} {vals}")
        expected.append(c["line_hex"])
    for c in load_vectors("binary_frames.json")["cases"]:
        scales = " ".join(_num(s) for s in c["scales"])
        vals = " ".join(_num(v) for row in c["values"] for v in row)
        cmds.append(
            f"frame {c['seq']} {c['t_ms']} {int(c['has_timestamp'])} {len(c['scales'])} {len(c['values'])} "
            f"{scales} {vals}"
        )
        expected.append(c["frame_hex"])
    for c in load_vectors("predictions.json")["cases"]:
        probs = " ".join(_num(p) for p in c["probs"])
        ts = c["t_ms"] is not None
        cmds.append(f"pred {c['window']} {int(ts)} {c['t_ms'] or 0} {c['label']} {len(c['probs'])} {probs}")
        expected += [c["frame_hex"], c["line_hex"]]
    return cmds, expected


def test_header_reproduces_all_vectors(runner):
    cmds, expected = _commands()
    result = subprocess.run(
        [str(runner)], input="\n".join(cmds) + "\n", capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    got = result.stdout.splitlines()
    assert len(got) == len(expected)
    # A prediction command answers two lines (its frame and its text line).
    per_line = [cmd for cmd in cmds for _ in range(2 if cmd.startswith("pred ") else 1)]
    mismatches = [
        (cmd.split()[0], cmd[:60], g, e) for cmd, g, e in zip(per_line, got, expected, strict=True) if g != e
    ]
    assert not mismatches
    assert len(expected) >= 30


def test_header_compiles_as_cpp_for_the_sketch(tmp_path):
    """The .ino is C++: the header must also be clean C++ (extern "C", no C-only constructs)."""
    if CXX is None:
        pytest.skip("no C++ compiler on this machine")
    src = tmp_path / "use.cpp"
    src.write_text(
        '#include "hartool_frame.h"\nint main() { hartool_framer f; float s[1] = {1.0f};\n'
        "return hartool_framer_init(&f, 1, s, 1, 1, 0); }\n"
    )
    cmd = [
        CXX,
        "-std=c++11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        f"-I{ARDUINO_SKETCH}",
        "-c",
        str(src),
        "-o",
        str(tmp_path / "use.o"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_header_builds_for_avr(tmp_path):
    """Compile for an ATmega328P (Uno/Nano): 16-bit int, 32-bit double, avr-libc math; needs avr-gcc."""
    avr = shutil.which("avr-gcc")
    if avr is None:
        pytest.skip(f"avr-gcc not installed ({SETUP_HINT}: apt-get install gcc-avr avr-libc)")
    src = tmp_path / "avr.c"
    src.write_text(
        '#include "hartool_frame.h"\n'
        "static hartool_framer f;\n"
        "static uint8_t out[HARTOOL_FRAME_MAX(HARTOOL_MAX_CH, HARTOOL_MAX_PER_FRAME)];\n"
        "static char line[HARTOOL_TEXT_LINE_MAX(6, 4)];\n"
        "int main(void) {\n"
        "  const float s[6] = {HARTOOL_ACC_SCALE_G, HARTOOL_ACC_SCALE_G, HARTOOL_ACC_SCALE_G,\n"
        "  HARTOOL_GYRO_SCALE_RAD_S, HARTOOL_GYRO_SCALE_RAD_S, HARTOOL_GYRO_SCALE_RAD_S};\n"
        "  hartool_framer_init(&f, 6, s, 1, 1, 0);\n"
        "  return (int)(hartool_framer_add(&f, s, 1u, out)\n"
        "               + hartool_format_text_line(line, sizeof line, s, 6, 1,"
        " 2u, 4)); }\n"
    )
    cmd = [
        avr,
        "-mmcu=atmega328p",
        "-std=c99",
        "-Os",
        "-Wall",
        "-Wextra",
        "-Werror",
        f"-I{ARDUINO_SKETCH}",
        str(src),
        "-o",
        str(tmp_path / "avr.elf"),
        "-lm",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
