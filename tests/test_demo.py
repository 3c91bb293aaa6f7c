"""`hartool demo --fast` with tiny settings: the whole chain (train, quantize, benchmark, stream) holds."""

from __future__ import annotations

import json
from pathlib import Path

from hartool.runtime.smoothing import DEFAULT_SMOOTHING
from hartool_testing import hartool


def test_demo_fast_chain(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = hartool("demo", "--fast", "--out", str(out), "--epochs", "1", "--max-windows", "300",
                   "--bench-runs", "20", "--stream-seconds", "20", "--speed", "0", timeout=900)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["training"]) == {"cnn", "lstm"}
    for arch in ("cnn", "lstm"):
        names = {r["name"]: r for r in summary["artifacts"][arch]}
        assert names["tflite-fp32"]["status"] == "ok" and names["onnx-fp32"]["status"] == "ok"
        assert (out / f"benchmark-{arch}.json").is_file()
    int8 = {r["name"]: r for r in summary["artifacts"]["lstm"]}
    assert "ok" in (int8["tflite-int8"]["status"], int8.get("tflite-int8-unrolled", {}).get("status"))
    assert any(r["artifact"] == "keras-predict" for r in summary["keras_baseline"])
    stream = summary["stream"]
    # 20 s at 50 Hz = 1000 samples -> 14 windows of 128 / 64, all classified, none dropped.
    assert stream["windows"] == 14 and stream["dropped"] == 0 and stream["end_reason"] == "max_windows"
    assert f"stream excerpt: subject 9, {stream['artifact']}: 14 windows" in proc.stdout
    rows = [r for r in stream["predictions"] if r["truth"] is not None]
    assert [r["window"] for r in stream["predictions"]] == list(range(14)) and len(rows) == stream["scored_windows"]
    assert stream["raw_accuracy"] == sum(r["raw_label"] == r["truth"] for r in rows) / len(rows)
    assert stream["accuracy"] == sum(r["label"] == r["truth"] for r in rows) / len(rows)
    assert "stage times: train" in proc.stdout
    # The whole held-out subject, streamed at full speed through the default smoothing, scored as a timeline.
    tl = summary["timeline"]
    assert tl["windows"] == tl["expected_windows"] > 400 and tl["dropped"] == 0
    assert tl["end_reason"] == "max_windows" and tl["smoothing"] == DEFAULT_SMOOTHING
    assert 0 < tl["scored_windows"] < tl["windows"]  # transitions and unlabelled stretches are not scored
    assert 0.0 <= tl["window_accuracy"] <= 1.0 and 0.0 <= tl["segment_f1"] <= 1.0
    assert tl["true_changes_per_min"] > 0
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("held-out subject 9, whole recording (") and "segment F1" in last
    assert f"{tl['changes_per_min']:.1f} label changes/min vs {tl['true_changes_per_min']:.1f} in the truth" in last
    assert tl["label_delay_s"] == 3.84 and "labels 3.8 s behind" in last  # the default looks 3 windows ahead
