"""Interpreter backends: input-contract checks at load and clear errors for corrupt model files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hartool.cli import cli
from hartool.core.errors import ModelError
from hartool.core.timebase import channel_scales
from hartool.runtime.backends import load_predictor
from hartool.runtime.smoothing import ProbabilitySmoother
from hartool.runtime.window import WindowAssembler


@pytest.mark.parametrize("name", ["bad.tflite", "bad.onnx"])
def test_corrupt_model_file_is_one_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match=f"^{path}: (litert|onnxruntime) cannot load this model"):
        load_predictor(path)


@pytest.mark.parametrize("artifact", ["model_int8.tflite", "model_fp32.onnx"])
def test_input_contract_is_checked(quantized_bundle: Path, artifact: str) -> None:
    with pytest.raises(ModelError, match="model input is 128 samples x 6 channels but the bundle says 64 x 6"):
        load_predictor(quantized_bundle / artifact, window=64, channels=6, n_classes=6)
    with pytest.raises(ModelError, match="model outputs 6 classes but the bundle has 12 labels"):
        load_predictor(quantized_bundle / artifact, window=128, channels=6, n_classes=12)


def test_stream_refuses_tampered_artifact(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    (bundle_copy / "model_int8.tflite").write_bytes(b"\x00" * 64)
    result = CliRunner().invoke(cli, ["stream", str(bundle_copy), "--port", "loop://", "--artifact", "tflite-int8"])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: {bundle_copy / 'model_int8.tflite'}: artifact 'tflite-int8' is corrupt "
                                     "(size/sha256 differ from the manifest)")
    assert manifest["artifacts"]


def test_window_assembler_emits_every_stride() -> None:
    asm = WindowAssembler(128, 64, 2)
    data = np.arange(1000 * 2, dtype=np.float32).reshape(1000, 2)
    seen = []
    for chunk in np.array_split(data, 37):
        seen += [(i, end, w[0, 0], w[-1, 0]) for i, end, w in asm.push(chunk)]
    assert [s[0] for s in seen] == list(range(14))
    assert all(first == 2 * (end - 128) and last == 2 * (end - 1) for _, end, first, last in seen)
    assert asm.pending == 1000 - (128 + 13 * 64)
    pending = asm.pending
    assert asm.reset() == pending and asm.pending == 0


def test_smoother_and_units() -> None:
    sm = ProbabilitySmoother(2, 3)
    sm.update(np.array([1.0, 0.0, 0.0], np.float32))
    np.testing.assert_allclose(sm.update(np.array([0.0, 1.0, 0.0], np.float32)), [0.5, 0.5, 0.0])
    channels = [{"name": n, "unit": "g" if n.startswith("acc") else "rad/s"}
                for n in ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")]
    scales = channel_scales(channels, acc_unit="m/s2", gyro_unit="deg/s")
    np.testing.assert_allclose(scales, [1 / 9.80665] * 3 + [np.pi / 180] * 3, rtol=1e-6)


def _stderr_of(code: str, level: str) -> str:
    """stderr of a fresh interpreter process (LiteRT logs its INFO line once per process)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | {"TF_CPP_MIN_LOG_LEVEL": level}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def test_litert_info_line_hidden_unless_verbose(quantized_bundle: Path) -> None:
    code = ("from hartool.runtime.backends import load_predictor\n"
            f"load_predictor({str(quantized_bundle / 'model_int8.tflite')!r}, backend='litert')\n")
    assert "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." in _stderr_of(code, "0")  # --debug
    assert _stderr_of(code, "2") == ""  # the CLI's default


def test_native_warnings_pass_through_while_info_is_hidden() -> None:
    code = ("import os, sys\nfrom hartool.runtime.backends import _native_info_hidden\n"
            "sys.stderr.write('before\\n')\n"
            "with _native_info_hidden():\n"
            "    os.write(2, b'INFO: Created a delegate.\\nWARNING: kept\\n')\n"
            "    sys.stderr.write('python line\\n')\n"
            "    os.write(2, b'INFO: Replacing 3 node(s)\\nERROR: also kept\\n')\n"
            "sys.stderr.write('after\\n')\n")
    assert _stderr_of(code, "2") == "before\nWARNING: kept\npython line\nERROR: also kept\nafter\n"
    assert _stderr_of(code, "0").count("INFO: ") == 2
