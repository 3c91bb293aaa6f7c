"""Quantize hygiene: unloadable artifacts are never registered; operator lists; the tflite-runtime run check."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from onnx import GraphProto, TensorProto, helper

from hartool.core.bundle import Bundle
from hartool.export.quantize import _interleaved_latency_us
from hartool.export.tflite_ops import operator_list, read_operator_codes
from hartool.export.worker import stable_names
from hartool.runtime.artifacts import rank_default
from hartool_testing import hartool


def test_an_artifact_that_does_not_load_is_never_registered(bundle_copy: Path) -> None:
    before = {a["name"] for a in Bundle.load(bundle_copy).artifacts}
    assert "tflite-int8" in before
    proc = hartool("quantize", str(bundle_copy), "--formats", "tflite", "--modes", "int8", "--json",
                   env={"HARTOOL_EXPORT_FAULT": "tflite:int8:unloadable"}, check=False)
    assert proc.returncode != 0  # the only requested artifact failed
    rows = {r["name"]: r for r in json.loads(proc.stdout)} if proc.stdout.strip() else {}
    if rows:
        assert rows["tflite-int8"]["status"] == "failed"
        assert rows["tflite-int8"]["error"].startswith("does not load")
    bundle = Bundle.load(bundle_copy)
    after = {a["name"] for a in bundle.artifacts}
    # The broken file is gone, and so is the older entry of that name (it described the replaced model).
    assert after == before - {"tflite-int8"}
    assert not (bundle_copy / "model_int8.tflite").exists()
    assert not list(bundle_copy.glob(".quantize-*"))
    for entry in bundle.artifacts:
        bundle.artifact_path(entry)  # every registered artifact still matches its sha256
    # The artifacts left from the earlier run were re-timed in this run's rounds, so the default compares
    # latencies taken together, and it is the rule's pick over them.
    latency = bundle.manifest["quantize"]["latency"]
    assert sorted(latency["timed_together"]) == sorted(after)
    assert all(e["latency_us"] > 0 for e in bundle.artifacts)
    assert bundle.manifest["default_artifact"]["name"] == rank_default(bundle.artifacts)[0]["name"]


class _Recorder:
    """Stands in for an interpreter to record the order quantize times artifacts in (no clock asserted)."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.log.append(self.name)
        return x


def test_latencies_are_timed_in_alternating_interleaved_rounds() -> None:
    log: list[str] = []
    preds = {n: _Recorder(n, log) for n in ("a", "b", "c")}
    out = _interleaved_latency_us(preds, np.zeros((4, 128, 6), np.float32), runs=40, rounds=4)
    assert set(out) == {"a", "b", "c"} and all(v > 0 for v in out.values())
    timed = log[30:]  # after 10 warm-up calls each
    assert len(timed) == 3 * 40
    blocks = [timed[i] for i in range(0, len(timed), 10)]  # 10 calls per artifact per round
    assert blocks == ["a", "b", "c", "c", "b", "a", "a", "b", "c", "c", "b", "a"]
    assert all(timed[i : i + 10] == [timed[i]] * 10 for i in range(0, len(timed), 10))


def _legacy_operator_codes(path: Path) -> list[tuple[int, int, str | None]]:
    """The hand-written flatbuffer walk quantize used before (reference for the schema-based reader)."""
    buf = path.read_bytes()

    def field(table: int, index: int) -> int | None:
        vtable = table - struct.unpack_from("<i", buf, table)[0]
        slot = 4 + 2 * index
        if slot >= struct.unpack_from("<H", buf, vtable)[0]:
            return None
        off = struct.unpack_from("<H", buf, vtable + slot)[0]
        return table + off if off else None

    root = struct.unpack_from("<I", buf, 0)[0]
    vec_field = field(root, 1)
    vec = vec_field + struct.unpack_from("<I", buf, vec_field)[0]
    codes = []
    for i in range(struct.unpack_from("<I", buf, vec)[0]):
        elem = vec + 4 + 4 * i
        table = elem + struct.unpack_from("<I", buf, elem)[0]
        pos = field(table, 0)
        deprecated = struct.unpack_from("<b", buf, pos)[0] if pos else 0
        pos = field(table, 3)
        builtin = struct.unpack_from("<i", buf, pos)[0] if pos else 0
        pos = field(table, 2)
        version = struct.unpack_from("<i", buf, pos)[0] if pos else 1
        pos = field(table, 1)
        custom = None
        if pos:
            s = pos + struct.unpack_from("<I", buf, pos)[0]
            custom = buf[s + 4 : s + 4 + struct.unpack_from("<I", buf, s)[0]].decode()
        codes.append((max(deprecated, builtin), version, custom))
    return codes


def test_operator_lists_unchanged_and_match_the_interpreter(quantized_bundle: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    bundle = Bundle.load(quantized_bundle)
    tflite = [a for a in bundle.artifacts if a["format"] == "tflite"]
    assert len(tflite) == 5
    for entry in tflite:
        path = bundle.artifact_path(entry)
        assert read_operator_codes(path) == _legacy_operator_codes(path), entry["name"]
        assert operator_list(path) == entry["ops"], entry["name"]
        it = Interpreter(model_path=str(path))
        used = {d["op_name"] for d in it._get_ops_details()}
        assert used <= {o["op"] for o in entry["ops"]}, entry["name"]
    with pytest.raises(ValueError, match="not a valid TFLite flatbuffer"):
        bad = quantized_bundle.parent / "bad.tflite"
        bad.write_bytes(b"\x10\x00\x00\x00" + b"\xff" * 12)
        read_operator_codes(bad)


# tests/setup_services.sh makes this venv; HARTOOL_TFLITE_RUNTIME_PYTHON points at another one.
TFLITE_RUNTIME_PYTHON = os.environ.get("HARTOOL_TFLITE_RUNTIME_PYTHON") or str(
    Path(__file__).resolve().parents[2] / ".cache" / "tflrt" / "bin" / "python")


@pytest.mark.skipif(not os.path.exists(TFLITE_RUNTIME_PYTHON),
                    reason=f"no tflite-runtime 2.14 python at {TFLITE_RUNTIME_PYTHON} (run tests/setup_services.sh)")
def test_tflite_runtime_check_runs_one_window(bundle_copy: Path) -> None:
    python = TFLITE_RUNTIME_PYTHON
    proc = hartool("quantize", str(bundle_copy), "--formats", "tflite", "--modes", "fp32,int8,dynamic",
                   "--calibration-windows", "64", "--tflite-runtime-python", python, "--json")
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    for name, tolerance in (("tflite-fp32", 1e-4), ("tflite-int8", 16 / 256)):
        assert rows[name]["tflite_runtime"].startswith("runs one window: same output as LiteRT"), rows[name]
        diff = float(rows[name]["tflite_runtime"].split("max |diff| ")[1].rstrip(")"))
        assert diff <= tolerance
    # Whatever tflite-runtime 2.14 makes of the dynamic-range model (older bundles used FULLY_CONNECTED v12,
    # which it rejects), the row says it: ran and compared, or rejected with the interpreter's reason.
    assert rows["tflite-dynamic"]["tflite_runtime"].startswith(("runs one window", "rejected")), rows["tflite-dynamic"]
    manifest = {a["name"]: a for a in Bundle.load(bundle_copy).artifacts}
    assert manifest["tflite-int8"]["tflite_runtime"] == rows["tflite-int8"]["tflite_runtime"]
    assert np.isfinite(diff)


def _graph_with_dims(batch: str, other: str) -> bytes:
    """A small ONNX graph whose symbolic dimensions carry the given names (tf2onnx numbers them per process)."""
    x = helper.make_tensor_value_info("imu", TensorProto.FLOAT, [batch, 128, 6])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, 6])
    z = helper.make_tensor_value_info("emb", TensorProto.FLOAT, [other, 114])
    mid = helper.make_tensor_value_info(f"relu_{other}", TensorProto.FLOAT, [batch, 128, 6])
    nodes = [helper.make_node("Relu", ["imu"], [f"relu_{other}"], name=f"Relu__{other}"),
             helper.make_node("ReduceMean", [f"relu_{other}"], ["out"], keepdims=0, axes=[1]),
             helper.make_node("Identity", ["imu"], ["emb"])]
    graph = helper.make_graph(nodes, "g", [x], [y, z], value_info=[mid])
    stable_names(graph)
    return graph.SerializeToString()


def test_symbolic_dimensions_get_names_that_do_not_depend_on_the_converter_run() -> None:
    # The same model converted after other functions were traced came out with another batch-dimension name
    # (unk__141 against unk__140): other bytes, though nothing else differed.
    first, again = _graph_with_dims("unk__140", "unk__141"), _graph_with_dims("unk__141", "unk__142")
    assert first == again
    assert b"dim_1" in first and b"dim_2" in first and b"unk__" not in first
    g = GraphProto.FromString(first)
    dims = [[d.dim_param for d in v.type.tensor_type.shape.dim if d.dim_param] for v in (*g.input, *g.output)]
    assert dims == [["dim_1"], ["dim_1"], ["dim_2"]]  # a shared symbol stays shared, distinct ones stay distinct
