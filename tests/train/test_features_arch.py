"""`--arch features`: trains, exports to TFLite/ONNX with a feature-vector input, evaluates and benchmarks like any bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hartool.core.bundle import Bundle
from hartool.core.preprocess import preprocess
from hartool.data import load_dataset, recording_for_subject
from hartool.runtime.artifacts import load_bundle_predictor
from hartool_testing import TINY_TRAIN, hartool


def test_features_bundle_trains_quantizes_and_benchmarks(tmp_path: Path) -> None:
    out = tmp_path / "features"
    hartool("train", "--arch", "features", "--out", str(out), *TINY_TRAIN)
    bundle = Bundle.load(out)
    spec = bundle.preprocessing
    assert spec["type"] == "features" and spec["n_features"] == 84
    assert bundle.manifest["input"]["shape"] == [1, 84]
    proc = hartool("quantize", str(out), "--formats", "tflite,onnx", "--modes", "fp32,int8",
                   "--calibration-windows", "64", "--json")
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    for name in ("tflite-fp32", "tflite-int8", "onnx-fp32"):
        assert rows[name]["status"] == "ok", rows[name]
        # Accuracy through the interpreter on the bundle's test windows, as for any other model.
        assert rows[name]["accuracy"] > 0.4
        assert abs(rows[name]["delta_pp"]) < 10
    bundle = Bundle.load(out)
    assert bundle.manifest["default_artifact"]["name"] in rows
    # The same numpy features feed the interpreter on the device: one window of a recording, end to end.
    entry, pred = load_bundle_predictor(bundle, "tflite-int8")
    assert pred.input_shape == (1, 84)
    rec = recording_for_subject(load_dataset("hapt"), 9)[0]
    probs = pred.predict(preprocess(rec.values[1000:1128], spec))
    assert probs.shape == (1, 6) and abs(float(probs.sum()) - 1.0) < 0.02
    bench = tmp_path / "bench.json"
    hartool("benchmark", str(out), "--artifacts", "tflite-int8,onnx-fp32", "--runs", "20", "--warmup", "2",
            "--out", str(bench))
    doc = json.loads(bench.read_text())
    assert [r["status"] for r in doc["results"]] and all(r["status"] == "ok" for r in doc["results"])
    assert np.isfinite([r["latency_us"]["p50"] for r in doc["results"]]).all()
