"""The classifying sketch (arduino/hartool_imu_classify) compiles against a freshly exported library and, run on the
host with a tiny Arduino stand-in (tests/firmware/c/arduino_shim: Serial to stdout, an IMU fed from stdin, a clock
one sample period per loop()), sends prediction messages that the host decoders read as the host C build's
labels, in text and (after the host's 'b') binary, with or without raw samples."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hartool_fw_support import ARDUINO_SKETCH, BRIDGE

from hartool.bench.mcu import HostLibrary
from hartool.export.c.library import export_c
from hartool.wire.binary import BinaryDecoder
from hartool.wire.prediction import prob_counts
from hartool.wire.text import TextDecoder

SKETCH = BRIDGE / "arduino" / "hartool_imu_classify" / "hartool_imu_classify.ino"
SHIM = Path(__file__).resolve().parent / "c" / "arduino_shim"
WARN = ["-Wall", "-Wextra", "-Werror"]
DEG_TO_RAD = np.float32(0.017453292519943295)


@pytest.fixture(scope="module")
def exported(quantized_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, HostLibrary]:
    if shutil.which("gcc") is None or shutil.which("g++") is None:
        pytest.skip("no host gcc / g++ to build the sketch")
    out = tmp_path_factory.mktemp("sketch")
    export_c(quantized_bundle, out / "lib")
    return out / "lib" / "src", HostLibrary(out / "lib" / "src", out / "host")


def _build(src: Path, work: Path, *defines: str) -> Path:
    """The sketch + shim with g++ (gnu++11, as the Arduino IDE compiles .ino), the library with gcc (C99)."""
    work.mkdir(parents=True, exist_ok=True)
    objs = []
    for c in sorted(src.glob("*.c")):
        obj = work / f"{c.stem}.o"
        subprocess.run(["gcc", "-std=c99", "-O2", "-c", str(c), "-o", str(obj)], check=True, timeout=300)
        objs.append(str(obj))
    exe = work / "sketch"
    res = subprocess.run(["g++", "-std=gnu++11", "-O2", *WARN, *defines, f"-I{SHIM}", f"-I{ARDUINO_SKETCH}", f"-I{src}",
                          "-include", "Arduino.h", "-x", "c++", str(SKETCH), "-x", "c++", str(SHIM / "shim_main.cpp"),
                          "-x", "none", *objs, "-lm", "-o", str(exe)], capture_output=True, text=True, timeout=300,
                         check=False)
    assert res.returncode == 0, res.stderr
    return exe


def _imu(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(what the IMU stand-in reports: acc g + gyro deg/s, what the model gets: acc g + gyro rad/s), float32."""
    rng = np.random.default_rng(seed)
    amp = np.repeat(rng.uniform(0.1, 1.5, n // 64 + 1), 64)[:n, None]
    raw = np.column_stack([rng.normal(0, 0.3, (n, 3)) * amp + [0, 0, 1], rng.normal(0, 60, (n, 3)) * amp])
    raw = raw.astype(np.float32)
    model = raw.copy()
    model[:, 3:] = raw[:, 3:] * DEG_TO_RAD  # float32 multiply, as the sketch does
    return raw, model


def _run(exe: Path, raw: np.ndarray, commands: str = "") -> bytes:
    env = {**os.environ, "HARTOOL_SHIM_COMMANDS": commands}
    res = subprocess.run([str(exe)], input=raw.tobytes(), capture_output=True, env=env, timeout=120, check=True)
    return res.stdout


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("samples", [False, True], ids=["predictions", "with-samples"])
def test_sketch_compiles_and_its_predictions_decode_to_the_host_c_labels(exported, tmp_path: Path, binary: bool,
                                                                         samples: bool) -> None:
    src, lib = exported
    exe = _build(src, tmp_path, f"-DHARTOOL_SEND_SAMPLES={int(samples)}")
    n = lib.window + lib.stride * 4
    raw, model = _imu(n, seed=5)
    out = _run(exe, raw, "b" if binary else "")
    dec = BinaryDecoder(6) if binary else TextDecoder(6, skip_first_line=False)
    batch = dec.feed(out)
    got = dec.take_predictions()
    want = [lib.classify(model[k * lib.stride : k * lib.stride + lib.window]) for k in range(5)]
    assert [(p.window, p.label, p.counts) for p in got] == [(k, lab, prob_counts(pr)) for k, (lab, pr) in enumerate(want)]
    assert [p.t_ms for p in got] == [20 * (lib.window - 1 + lib.stride * k) for k in range(5)]
    assert dec.bad_predictions == 0 and getattr(dec, "bad_frames", 0) == 0 and getattr(dec, "bad_lines", 0) == 0
    if samples:  # the raw samples too, as the streaming sketch sends them
        assert batch is not None and len(batch.values) == n
        tol = 1 / 2048 if binary else 1e-4
        np.testing.assert_allclose(batch.values[:, :3], model[:, :3], atol=tol)
    else:
        assert batch is None
