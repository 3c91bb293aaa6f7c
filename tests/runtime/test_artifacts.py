"""Default artifact: the fastest within 0.3 pp of the best validation accuracy, with the reason in the manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from hartool.core.bundle import Bundle
from hartool.runtime.artifacts import choice_reason, choose_artifact, default_artifact_record, rank_default


def entry(name: str, acc: float | None, lat: float | None, fmt: str = "tflite", val: float | None = None) -> dict:
    return {"name": name, "format": fmt, "mode": name.split("-")[1], "file": f"{name}.{fmt}", "bytes": 1,
            "sha256": "0", "accuracy": acc, "latency_us": lat, "val_accuracy": val}


def test_the_choice_is_made_on_validation_never_on_test_accuracy() -> None:
    # int8 is 1 pp better on test, fp32 1 pp better on validation: validation decides.
    entries = [entry("tflite-fp32", 0.95, 15.0, val=0.97), entry("tflite-int8", 0.96, 7.0, val=0.96)]
    pick, reason = rank_default(entries)
    assert pick["name"] == "tflite-fp32"
    assert "of the best validation accuracy (97.00 %, tflite-fp32)" in reason and reason.endswith("97.00 %")
    # An old manifest without validation accuracy anywhere: test accuracy, and the reason says so.
    for e in entries:
        e["val_accuracy"] = None
    pick, reason = rank_default(entries)
    assert pick["name"] == "tflite-int8" and "best test accuracy (96.00 %, tflite-int8; no validation" in reason


def test_fastest_within_tolerance_wins() -> None:
    entries = [entry("tflite-fp32", 0.9550, 15.0), entry("tflite-int8", 0.9525, 7.0),
               entry("tflite-dynamic", 0.9510, 3.0), entry("onnx-fp32", 0.9552, 25.0, "onnx")]
    pick, reason = rank_default(entries)
    # dynamic is fastest but 0.42 pp below the best (onnx-fp32, 95.52 %): int8 (0.27 pp below) wins.
    assert pick["name"] == "tflite-int8"
    assert "fastest of 3 artifact(s) within 0.3 pp" in reason and "95.52 %, onnx-fp32" in reason


def test_latencies_within_ten_percent_are_a_tie_the_preference_order_breaks() -> None:
    entries = [entry("tflite-fp32", 0.9650, 37.0), entry("tflite-dynamic", 0.9636, 12.0),
               entry("tflite-int8", 0.9640, 13.1)]
    pick, reason = rank_default(entries)
    assert pick["name"] == "tflite-int8"
    assert reason.startswith("first in the preference order of those within 10 % of the fastest "
                             "(tflite-dynamic, 12.0 us) of 3 artifact(s)")
    entries[2]["latency_us"] = 13.3  # 10.8 % slower: no longer a tie
    assert rank_default(entries)[0]["name"] == "tflite-dynamic"
    # Tied artifacts outside the preference order: the fastest of them.
    pick, reason = rank_default([entry("tflite-int8-unrolled", 0.95, 10.5), entry("tflite-int16x8-unrolled", 0.95, 10.0)])
    assert pick["name"] == "tflite-int16x8-unrolled" and reason.startswith("fastest of 2")


def test_without_latency_or_accuracy_the_preference_order_decides() -> None:
    pick, reason = rank_default([entry("tflite-fp32", 0.95, None), entry("tflite-int8", 0.95, None)])
    assert pick["name"] == "tflite-int8" and reason.startswith("no latency recorded")
    pick, reason = rank_default([entry("tflite-fp32", None, None), entry("tflite-dynamic", None, 1.0)])
    assert pick["name"] == "tflite-dynamic" and reason.startswith("no accuracy recorded")
    assert default_artifact_record([]) is None


def test_quantize_records_the_choice_and_stream_uses_it(quantized_bundle: Path) -> None:
    bundle = Bundle.load(quantized_bundle)
    record = bundle.manifest["default_artifact"]
    chosen = choose_artifact(bundle)
    assert chosen["name"] == record["name"]
    assert all(0.0 <= a["val_accuracy"] <= 1.0 for a in bundle.artifacts)
    assert bundle.manifest["quantize"]["choice_windows"]["from"] == "validation subjects"
    best = max(a["val_accuracy"] for a in bundle.artifacts)
    assert chosen["val_accuracy"] >= best - 0.003 - 1e-12
    near = [a for a in bundle.artifacts if a["val_accuracy"] >= best - 0.003 - 1e-12]
    assert chosen["latency_us"] <= 1.1 * min(a["latency_us"] for a in near)
    assert choice_reason(bundle, chosen) == record["reason"]
    assert choice_reason(bundle, bundle.artifact("tflite-fp32"), "tflite-fp32") == "named with --artifact"
    assert choose_artifact(bundle, "onnx-fp32")["name"] == "onnx-fp32"


def test_recorded_choice_that_no_longer_exists_falls_back_to_the_rule(bundle_copy: Path) -> None:
    bundle = Bundle.load(bundle_copy)
    bundle.manifest["default_artifact"] = {"name": "tflite-gone", "reason": "old"}
    assert choose_artifact(bundle)["name"] == rank_default(bundle.artifacts)[0]["name"]
    bundle.manifest["artifacts"] = []
    with pytest.raises(Exception, match="no .tflite or .onnx artifact"):
        choose_artifact(bundle)


def test_benchmark_default_artifact(quantized_bundle: Path, tmp_path: Path) -> None:
    import json

    from hartool_testing import hartool

    out = tmp_path / "b.json"
    proc = hartool("benchmark", str(quantized_bundle), "--artifacts", "default", "--runs", "10", "--warmup", "1",
                   "--out", str(out))
    doc = json.loads(out.read_text())
    record = Bundle.load(quantized_bundle).manifest["default_artifact"]
    assert doc["bundles"][0]["default_artifact"] == record
    assert {r["artifact"] for r in doc["results"]} == {record["name"]}
    assert f"default artifact (what stream runs): {record['name']}" in proc.stderr
