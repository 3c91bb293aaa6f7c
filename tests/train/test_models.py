"""Architectures (train/models.py) and the --orientation option: tiny, no real training beyond TINY_TRAIN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hartool.core.orientation import REFERENCE_GRAVITY
from hartool_testing import TINY_TRAIN, hartool


@pytest.mark.parametrize(("arch", "variant"), [("cnn", "hybrid"), ("cnn", "hybrid2"), ("cnn", "small"), ("cnn", "v1"), ("lstm", None)])
def test_fixed_batch_twin_keeps_weights_and_outputs(arch: str, variant: str | None) -> None:
    from hartool.train.models import build_model, fixed_batch_twin

    model = build_model(arch, 6, 128, 6, variant=variant)
    twin = fixed_batch_twin(model, arch, unroll=arch == "lstm")
    assert twin.input_shape == (1, 128, 6)
    x = np.random.default_rng(0).normal(size=(1, 128, 6)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(twin(x)), np.asarray(model(x)), atol=1e-5)


def test_default_cnn_is_the_small_hybrid() -> None:
    from hartool.train.models import build_model

    n = build_model("cnn", 6, 128, 6).count_params()
    # int8 weights + graph: under 64 KB needs well under 64k parameters (v1 had 121k).
    assert 30_000 < n < 55_000


def test_cnn_on_a_trunk_worn_phone_defaults_to_free_and_says_why(tmp_path: Path) -> None:
    """hapt (a waist phone) without --orientation: the calibrated model, recorded with its reason and said on
    stderr."""
    out = tmp_path / "free"
    proc = hartool("train", "--arch", "cnn", "--out", str(out), *TINY_TRAIN)
    m = json.loads((out / "manifest.json").read_text())
    assert m["orientation"]["mode"] == "free" and m["orientation"]["reference_from"] == "walking"
    assert m["orientation"]["chosen"].startswith("trunk-worn") and m["training"]["orientation"] == "free"
    assert "orientation free (default): trunk-worn" in proc.stderr
    assert m["training"]["variant"] == "hybrid2" and m["training"]["aug_tilt_deg"] == 5.0
    assert m["training"]["aug_yaw_deg"] == 180.0
    np.testing.assert_allclose(m["training"]["aug_yaw_axis"], REFERENCE_GRAVITY)
    # Two epochs on calibrated windows already learn something (57 % at seed 0; chance is 1 in 6).
    assert m["metrics"]["test"]["accuracy"] > 0.35


def test_fixed_cnn_turns_about_its_own_upright_axis_by_default(tmp_path: Path) -> None:
    out, off = tmp_path / "fixed", tmp_path / "off"
    hartool("train", "--arch", "cnn", "--orientation", "fixed", "--out", str(out), *TINY_TRAIN)
    hartool("train", "--arch", "cnn", "--orientation", "fixed", "--out", str(off), "--yaw-aug", "0", *TINY_TRAIN)
    m, m_off = (json.loads((b / "manifest.json").read_text())["training"] for b in (out, off))
    assert m["aug_yaw_deg"] == 180.0 and m["patience"] is None and m["epochs_run"] == 2
    # HAPT's waist phone: upright gravity lies along +x, within a few degrees of the calibrated frame's vertical.
    ref = np.asarray(REFERENCE_GRAVITY) / np.linalg.norm(REFERENCE_GRAVITY)
    assert np.degrees(np.arccos(np.clip(np.dot(m["aug_yaw_axis"], ref), -1, 1))) < 5.0
    assert m_off["aug_yaw_deg"] == 0.0 and m_off["aug_yaw_axis"] is None
    assert json.loads((out / "manifest.json").read_text())["preprocessing"]["clip"] == 4.0
    assert json.loads((out / "manifest.json").read_text())["orientation"] == {"mode": "fixed", "chosen": "given"}
