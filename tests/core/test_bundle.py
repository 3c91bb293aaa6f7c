"""Bundle manifest: validation errors are one clear line; writes are atomic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hartool.cli import cli
from hartool.core.atomic import atomic_write_bytes
from hartool.core.bundle import Bundle
from hartool.core.errors import BundleError
from hartool.core.preprocess import fit_preprocessing, preprocess


def _error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_missing_bundle_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["quantize", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert _error_line(result) == (
        f"Error: {tmp_path / 'nope'}: not a bundle directory (run 'hartool train --out {tmp_path / 'nope'}' first)"
    )


def test_corrupt_manifest_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["quantize", str(tmp_path)])
    assert result.exit_code == 1
    line = _error_line(result)
    assert line.startswith(f"Error: {tmp_path / 'manifest.json'}: corrupt manifest (")


def test_wrong_version_manifest(trained_bundle: Path, tmp_path: Path) -> None:
    manifest = json.loads((trained_bundle / "manifest.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format_version 99 is not supported"):
        Bundle.load(tmp_path)


def test_trained_bundle_manifest_is_complete(trained_bundle: Path) -> None:
    bundle = Bundle.load(trained_bundle)
    m = bundle.manifest
    assert m["labels"] == ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
    assert [c["unit"] for c in m["channels"]] == ["g", "g", "g", "rad/s", "rad/s", "rad/s"]
    assert (m["sample_rate_hz"], m["window"], m["stride"]) == (50.0, 128, 64)
    assert m["artifacts"] == []
    assert 0.0 <= m["metrics"]["test"]["macro_f1"] <= 1.0
    # One epoch on 600 windows is far from converged, but far above chance (1/6).
    assert m["metrics"]["test"]["accuracy"] > 0.3
    assert set(m["dataset"]["test_subjects"]) == {2, 4, 9, 10, 12, 13, 18, 20, 24}
    assert not set(m["dataset"]["val_subjects"]) & set(m["dataset"]["test_subjects"])
    assert (trained_bundle / "model.keras").stat().st_size == m["model"]["bytes"]
    assert (trained_bundle / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(trained_bundle.glob(".*tmp*")), "temp files left behind"


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, 123)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_preprocess_is_standardisation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(50, 128, 6)).astype(np.float32)
    spec = fit_preprocessing(x)
    y = preprocess(x, spec)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.reshape(-1, 6).mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(y.reshape(-1, 6).std(0), 1, atol=1e-3)
    out = np.empty((128, 6), np.float32)
    assert preprocess(x[0], spec, out=out) is out
    with pytest.raises(BundleError, match="input has 3 channels, the bundle.s preprocessing expects 6"):
        preprocess(x[..., :3], spec)
    assert "clip" not in spec  # bundles written before the clip existed read the same way


def test_preprocess_clips_standardised_values_when_the_spec_says_so() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, size=(40, 128, 6)).astype(np.float32)
    x[0, 5, 3] = 50.0  # a gyro spike
    spec = fit_preprocessing(x, clip=4.0)
    assert spec["clip"] == 4.0
    y, plain = preprocess(x, spec), preprocess(x, {k: v for k, v in spec.items() if k != "clip"})
    assert y.max() == 4.0 and plain.max() > 40.0
    inside = np.abs(plain) <= 4.0
    np.testing.assert_array_equal(y[inside], plain[inside])
    np.testing.assert_array_equal(y[~inside], np.sign(plain[~inside]) * 4.0)
    out = np.empty((128, 6), np.float32)
    np.testing.assert_array_equal(preprocess(x[0], spec, out=out), y[0])
