"""Unit tests of the benchmark library: statistics, timing loop, options, schema validation and compare."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hartool.bench.compare import compare_results, file_labels, parse_ref
from hartool.bench.latency import STAT_KEYS, input_pool, summarize_ns, time_calls
from hartool.bench.machine import machine_info, machine_summary
from hartool.bench.plots import pareto_front
from hartool.bench.run import BACKEND_NAMES, BenchmarkOptions, parse_threads, resolve_backends, run_child
from hartool.bench.schema import (
    SCHEMA,
    ResultsError,
    flat_rows,
    load_results,
    merge_results,
    validate_results,
)
from hartool.core.errors import HartoolError

# ---------------------------------------------------------------------------------------------------------
# Statistics and the timing loop


def test_summarize_ns_known_values():
    stats = summarize_ns(np.arange(1, 101) * 1000)  # 1..100 µs
    assert tuple(stats) == STAT_KEYS
    assert stats["mean"] == 50.5
    assert stats["min"] == 1.0 and stats["max"] == 100.0
    assert stats["p50"] == 50.5
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01)
    assert stats["std"] == pytest.approx(np.arange(1, 101).std(), abs=0.01)


def test_summarize_ns_rejects_empty():
    with pytest.raises(ValueError):
        summarize_ns(np.array([]))


def test_time_calls_counts_first_warmup_and_runs():
    pool = input_pool(8, 3, batch=2, seed=1, size=5)
    seen: list[np.ndarray] = []
    ticks: list[int] = []
    timing = time_calls(seen.append, pool, runs=30, warmup=4, tick=ticks.append, tick_every=10)
    assert len(seen) == 1 + 4 + 30
    assert all(x.shape == (2, 8, 3) for x in seen)
    assert timing.runs == 30 and timing.warmup == 4 and timing.batch == 2
    assert ticks == [10, 20, 30, 35]  # every 10 calls, then the total
    lat = timing.latency_us
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert timing.throughput_per_s > 0 and timing.warmup_avg_us is not None


def test_time_calls_without_warmup_and_with_budget():
    pool = input_pool(4, 2, size=3)
    timing = time_calls(lambda x: None, pool, runs=10, warmup=0)
    assert timing.warmup_avg_us is None and timing.runs == 10
    # A budget of zero seconds still times one run, and says so.
    timing = time_calls(lambda x: None, pool, runs=1000, warmup=0, budget_s=0.0)
    assert timing.runs == 1


def test_input_pool_is_seeded_standard_normal():
    a, b = input_pool(128, 6, seed=3), input_pool(128, 6, seed=3)
    assert a.dtype == np.float32 and a.shape == (64, 1, 128, 6)
    np.testing.assert_array_equal(a, b)
    assert abs(float(a.mean())) < 0.05 and abs(float(a.std()) - 1.0) < 0.05


def test_pareto_front_keeps_only_undominated_points():
    points = [(100.0, 90.0), (50.0, 85.0), (200.0, 95.0), (150.0, 88.0), (50.0, 80.0)]
    assert pareto_front(points) == [(50.0, 85.0), (100.0, 90.0), (200.0, 95.0)]


# ---------------------------------------------------------------------------------------------------------
# Options and backends


def test_parse_threads():
    assert parse_threads("1,2, 4") == (1, 2, 4)
    with pytest.raises(HartoolError) as err:
        parse_threads("x")
    assert str(err.value) == "--threads must be a comma list of integers like 1,2,4 (got 'x')"


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (BenchmarkOptions(runs=0), "--runs must be >= 1 (got 0)"),
        (BenchmarkOptions(warmup=-1), "--warmup must be >= 0 (got -1)"),
        (BenchmarkOptions(batch=0), "--batch must be >= 1 (got 0)"),
        (BenchmarkOptions(threads=(0,)), "--threads must be positive integers (got 0)"),
        (BenchmarkOptions(baseline="torch"), "unknown baseline 'torch'; choose from keras"),
        (BenchmarkOptions(backends=("tensorrt",)),
         f"unknown backend tensorrt; choose from all, {', '.join(BACKEND_NAMES)}"),
    ],
)
def test_options_validate(opts, message):
    with pytest.raises(HartoolError) as err:
        opts.validate()
    assert str(err.value) == message


def test_resolve_backends_all_and_explicit():
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("onnxruntime")
    tflite = resolve_backends(("all",), "tflite")
    assert tflite[:2] == ["litert", "litert-noxnnpack"]
    assert "tf" not in tflite  # TensorFlow's interpreter only when nothing lighter is installed
    assert resolve_backends(("all",), "onnx") == ["onnxruntime"]
    assert resolve_backends(("litert-noxnnpack", "onnxruntime"), "tflite") == ["litert-noxnnpack"]
    assert resolve_backends(("litert",), "onnx") == []


def test_resolve_backends_missing_runtime(monkeypatch):
    monkeypatch.setattr("hartool.bench.run.available_backends", lambda fmt: ["litert"])
    with pytest.raises(HartoolError) as err:
        resolve_backends(("tflite-runtime",), "tflite")
    assert str(err.value) == "backend tflite-runtime is not installed here (installed for tflite: litert)"


# ---------------------------------------------------------------------------------------------------------
# Child processes


def _child_spec(path: Path, **extra) -> dict:
    return {"kind": "artifact", "path": str(path), "backend": "litert", "threads": 1, "window": 128,
            "channels": 6, "n_classes": 6, "runs": 5, "warmup": 1, "batch": 1, "seed": 0,
            "keras_predict_runs": 5, "keras_budget_s": 1.0, **extra}


def test_child_domain_error_becomes_one_line(tmp_path):
    pytest.importorskip("ai_edge_litert")
    model = tmp_path / "broken.tflite"
    model.write_bytes(b"not a flatbuffer")
    rows, error = run_child(_child_spec(model), tmp_path, timeout_s=120)
    assert rows is None
    assert error.startswith(f"{model}: litert cannot load this model (")
    assert "\n" not in error


def test_child_timeout(tmp_path):
    model = tmp_path / "any.tflite"
    model.write_bytes(b"x")
    rows, error = run_child(_child_spec(model), tmp_path, timeout_s=0.01)
    assert rows is None and error == "timed out after 0 s"


def test_keras_baseline_child_runs_tensorflow_unpinned(monkeypatch):
    """Under `demo`, training pinned TensorFlow to two threads in this process's environment; the Keras baseline's
    child must time TensorFlow as `hartool benchmark` does (its defaults), while a value the user set stays."""
    from hartool.core.child import PINNED_TF_ENV_VAR, child_env
    from hartool.train.tflog import TF_ENV_KEYS, TF_THREADS, reproducible_tf_env

    for key in (*TF_ENV_KEYS, PINNED_TF_ENV_VAR):
        monkeypatch.delenv(key, raising=False)  # also restores whatever reproducible_tf_env sets below
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "3")  # the user's own choice
    settings = reproducible_tf_env()
    assert settings["TF_NUM_INTRAOP_THREADS"] == str(TF_THREADS) and settings["TF_NUM_INTEROP_THREADS"] == "3"
    reproducible_tf_env()  # a second call (train after the CLI) must not forget what the first one pinned
    pinned = child_env()
    assert {k: pinned.get(k) for k in settings} == settings  # converters keep training's numerics
    keras = child_env(tf_defaults=True)
    assert "TF_NUM_INTRAOP_THREADS" not in keras and "ONEDNN_MAX_CPU_ISA" not in keras
    assert keras["TF_NUM_INTEROP_THREADS"] == "3" and PINNED_TF_ENV_VAR not in keras
    assert keras["TF_CPP_MIN_LOG_LEVEL"] == "2"


# ---------------------------------------------------------------------------------------------------------
# Machine info


def test_machine_info_fields_and_summary():
    info = machine_info()
    for key in ("cpu_model", "cores", "arch", "os", "python", "packages"):
        assert info[key], key
    for pkg in ("numpy", "ai-edge-litert", "onnxruntime", "tensorflow", "keras"):
        assert pkg in info["packages"]
    assert info["packages"]["numpy"] == np.__version__
    assert info["arch"] in machine_summary(info)


def test_bench_modules_import_nothing_heavy():
    code = textwrap.dedent("""
        import sys
        import hartool.cli.bench_cmd, hartool.bench.run, hartool.bench.compare, hartool.bench.plots
        from hartool.bench.machine import machine_info
        machine_info()
        heavy = [m for m in ("tensorflow", "keras", "onnxruntime", "ai_edge_litert", "matplotlib")
                 if m in sys.modules]
        assert not heavy, heavy
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------------------------------------------------
# Schema and compare on synthetic documents


def _row(artifact: str, backend: str, p50: float, *, bundle: str = "cnn", threads: int | None = 1,
         accuracy: float | None = 0.9, status: str = "ok") -> dict:
    lat = {k: p50 for k in STAT_KEYS} | {"std": 1.0, "p99": 2 * p50}
    ok = status == "ok"
    return {"bundle": bundle, "artifact": artifact, "format": artifact.split("-")[0], "mode": "fp32",
            "backend": backend, "threads": threads, "status": status, "error": None if ok else "boom",
            "bytes": 1000, "accuracy": accuracy, "load_ms": 1.0 if ok else None,
            "first_ms": 1.0 if ok else None,
            "warmup_avg_us": p50 if ok else None, "latency_us": lat if ok else None,
            "throughput_per_s": 1e6 / p50 if ok else None, "peak_rss_mb": 50.0 if ok else None,
            "runs": 1000 if ok else None, "vs_keras": {}}


def _doc(rows: list[dict], baselines: list[dict] | None = None, bundle: str = "cnn", **settings) -> dict:
    return {"schema": SCHEMA, "created": "2026-01-01T00:00:00+00:00",
            "machine": {"cpu_model": "cpu", "cores": 4, "arch": "x86_64", "python": "3.11", "packages": {}},
            "settings": {"runs": 1000, "warmup": 50, "batch": 1, "seed": 0, "recompute_accuracy": False,
                         **settings},
            "bundles": [{"name": bundle}], "results": rows, "baselines": baselines or []}


def test_validate_accepts_a_document_and_rejects_bad_shapes():
    doc = _doc([_row("tflite-fp32", "litert", 100.0), _row("onnx-fp32", "onnxruntime", 0, status="failed")])
    assert validate_results(doc, "x") is doc
    cases = [
        ([], "x: not a hartool benchmark result (expected a JSON object)"),
        ({**doc, "schema": "other/1"},
         "x: not a hartool benchmark result (schema 'other/1', expected 'hartool.benchmark/1')"),
        ({k: v for k, v in doc.items() if k != "machine"}, "x: result lacks machine"),
        ({**doc, "results": {}}, "x: 'results' must be a list"),
    ]
    bad_row = copy.deepcopy(doc)
    del bad_row["results"][0]["latency_us"]["p99"]
    cases.append((bad_row,
                  "x: results[0]: 'latency_us' must hold numbers mean, std, p50, p90, p99, min, max"))
    bad_status = copy.deepcopy(doc)
    bad_status["results"][0]["status"] = "meh"
    cases.append((bad_status, "x: results[0]: status 'meh' is not one of ok, failed"))
    missing = copy.deepcopy(doc)
    del missing["results"][1]["runs"]
    cases.append((missing, "x: results[1] lacks runs"))
    for bad, message in cases:
        with pytest.raises(ResultsError) as err:
            validate_results(bad, "x")
        assert str(err.value) == message


def test_load_results_errors(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(ResultsError) as err:
        load_results(missing)
    assert str(err.value) == f"{missing}: no such file"
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ResultsError) as err:
        load_results(broken)
    assert str(err.value) == (f"{broken}: not valid JSON (Expecting property name enclosed in double quotes: "
                              "line 1 column 2 (char 1))")


def test_compare_ratios_across_files_and_against_a_reference():
    laptop = _doc([_row("tflite-fp32", "litert", 100.0), _row("tflite-int8", "litert", 40.0),
                   _row("onnx-fp32", "onnxruntime", 120.0)],
                  [_row("keras-predict", "keras-tensorflow", 40000.0, threads=None)])
    # A Pi: a different bundle folder name, one row missing, one failed.
    pi = _doc([_row("tflite-fp32", "litert", 600.0, bundle="my-cnn"), _row("tflite-int8", "litert", 200.0,
               bundle="my-cnn"), _row("onnx-fp32", "onnxruntime", 0, bundle="my-cnn", status="failed")],
              bundle="my-cnn", runs=500)
    out = compare_results([laptop, pi], ["laptop.json", "pi.json"], ref="tflite-fp32")
    rows = {r["artifact"]: r for r in out["rows"]}
    assert [f["label"] for f in out["files"]] == ["A", "B"]
    assert rows["tflite-fp32"]["ratio_vs_first"] == [1.0, 6.0]
    assert rows["tflite-int8"]["ratio_vs_first"] == [1.0, 5.0]
    assert rows["tflite-int8"]["p99_ratio_vs_first"] == [1.0, 5.0]
    assert rows["tflite-int8"]["ratio_vs_ref"] == [0.4, 0.333]
    assert rows["onnx-fp32"]["ratio_vs_first"] == [1.0, None]
    assert rows["onnx-fp32"]["cells"][1]["status"] == "failed"
    # tflite-fp32 never ran on onnxruntime, but it has one row only, so that row is the reference.
    assert rows["onnx-fp32"]["ratio_vs_ref"] == [1.2, None]
    assert rows["keras-predict"]["cells"][1] is None
    assert rows["keras-predict"]["ratio_vs_ref"] == [400.0, None]
    assert out["warnings"] == ["settings differ: runs 1000 (A), 500 (B)"]


def test_compare_reference_with_backend_and_errors():
    doc = _doc([_row("tflite-fp32", "litert", 100.0), _row("onnx-fp32", "onnxruntime", 200.0)])
    out = compare_results([doc], ["a.json"], ref="onnx-fp32/onnxruntime")
    assert [r["ratio_vs_ref"] for r in out["rows"]] == [[0.5], [1.0]]
    # Two tflite-fp32 rows and neither on onnxruntime: ambiguous, so no reference ratio rather than a guess.
    both = _doc([*doc["results"], _row("tflite-fp32", "litert-noxnnpack", 400.0)])
    out = compare_results([both], ["a.json"], ref="tflite-fp32")
    assert [r["ratio_vs_ref"] for r in out["rows"]] == [[1.0], [None], [1.0]]
    with pytest.raises(ResultsError) as err:
        compare_results([doc], ["a.json"], ref="tflite-int8")
    assert str(err.value) == ("--ref tflite-int8: no row has artifact 'tflite-int8' "
                              "(artifacts: onnx-fp32, tflite-fp32)")
    assert parse_ref("a/b") == ("a", "b") and parse_ref("a") == ("a", None)
    with pytest.raises(ResultsError):
        parse_ref("/litert")


def test_merged_documents_match_on_bundle_names():
    cnn = _doc([_row("tflite-fp32", "litert", 100.0)])
    lstm = _doc([_row("tflite-fp32", "litert", 900.0, bundle="lstm")], bundle="lstm")
    merged = merge_results([cnn, lstm])
    assert [b["name"] for b in merged["bundles"]] == ["cnn", "lstm"]
    out = compare_results([merged, merged], ["a", "b"])
    assert [(r["bundle"], r["ratio_vs_first"]) for r in out["rows"]] == [("cnn", [1.0, 1.0]),
                                                                        ("lstm", [1.0, 1.0])]
    with pytest.raises(ResultsError, match="bundle name"):
        merge_results([cnn, cnn])


def test_flat_rows_spread_latency_and_keras_ratios():
    row = _row("tflite-int8", "litert", 50.0) | {"vs_keras": {"keras-predict": 800.0}}
    flat = flat_rows(_doc([row], [_row("keras-predict", "keras-tensorflow", 40000.0, threads=None)]))
    assert [f["kind"] for f in flat] == ["artifact", "baseline"]
    assert flat[0]["p50_us"] == 50.0 and flat[0]["p99_us"] == 100.0
    assert flat[0]["x_vs_keras_predict"] == 800.0 and flat[0]["x_vs_keras_call"] is None


def test_file_labels():
    assert file_labels(3) == ["A", "B", "C"]
    assert file_labels(28)[26:] == ["A2", "B2"]


def test_round_trip_through_json(tmp_path):
    doc = _doc([_row("tflite-fp32", "litert", 100.0)])
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert load_results(path) == doc
