"""Interpreter backends: input-contract checks at load and clear errors for corrupt model files."""

from __future__ import annotations

import json
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
