"""Child-process converter, so a converter segfault cannot take hartool down.

Run as ``python -m hartool.export.worker --serve`` (job paths on stdin, one ``ok`` line per finished job:
``hartool.export.jobs``) or ``python -m hartool.export.worker JOB.json`` for one job. Each job writes the
artifact to ``job["out"]`` and a JSON result to ``job["result"]``. The parent owns timeouts, renames and
reporting.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

# Test hook: "FORMAT:MODE" makes that job die like the TF converter does on full-int8 LSTMs (signal 11);
# "FORMAT:MODE:unloadable" makes it write a file no interpreter loads and report success.
FAULT_ENV = "HARTOOL_EXPORT_FAULT"


def _load_keras(job: dict[str, Any]) -> Any:
    import keras

    from ..train.embedding import with_embedding
    from ..train.models import fixed_batch_twin

    model = keras.models.load_model(job["keras"], compile=False)
    # Batch fixed to 1: Keras 3 LSTMs only convert to fused TFLite ops with static shapes.
    twin = fixed_batch_twin(model, job["arch"], unroll=bool(job.get("unroll")))
    # Second output: the embedding that on-device enrollment fits its heads on (hartool.runtime.heads).
    dual, job["embedding_dim"] = with_embedding(twin)
    return dual


def _representative(job: dict[str, Any]) -> Any:
    calib = np.load(job["calib"]).astype(np.float32)

    def gen() -> Any:
        for i in range(calib.shape[0]):
            yield [calib[i : i + 1]]

    return gen


def convert_tflite(job: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    from .tflite_ops import operator_list

    twin = _load_keras(job)
    conv = tf.lite.TFLiteConverter.from_keras_model(twin)
    # Builtin ops only: a Raspberry Pi runtime has no Flex (SELECT_TF_OPS) delegate.
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    mode = job["mode"]
    if mode != "fp32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "fp16":
        conv.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        conv.representative_dataset = _representative(job)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if job.get("integer_io"):
            conv.inference_input_type = conv.inference_output_type = tf.int8
    elif mode == "int16x8":
        conv.representative_dataset = _representative(job)
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        if job.get("integer_io"):
            conv.inference_input_type = conv.inference_output_type = tf.int16
    elif mode != "dynamic" and mode != "fp32":
        raise ValueError(f"unknown TFLite mode {mode!r}")
    Path(job["out"]).write_bytes(conv.convert())
    return {"ops": operator_list(job["out"]), "embedding_dim": job.get("embedding_dim")}


def convert_onnx(job: dict[str, Any]) -> dict[str, Any]:
    mode = job["mode"]
    if mode == "fp32":
        return _onnx_fp32(job)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if mode == "dynamic":
        quantize_dynamic(job["source"], job["out"], weight_type=QuantType.QInt8)
        return {}
    if mode == "int8":
        return _onnx_static(job)
    raise ValueError(f"unknown ONNX mode {mode!r}")


def _onnx_fp32(job: dict[str, Any]) -> dict[str, Any]:
    import keras
    import onnx
    import tensorflow as tf
    import tf2onnx

    from ..train.embedding import with_embedding

    model, embedding_dim = with_embedding(keras.models.load_model(job["keras"], compile=False))
    # Keras 3 needs an explicit signature; the batch stays dynamic so benchmarks can batch.
    # The model's own input shape: (window, channels) for raw-window models, (n_features,) for --arch features.
    spec = (tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="imu"),)
    fn = tf.function(lambda x: model(x, training=False))
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=job["opset"])
    canonical_order(proto.graph)
    stable_names(proto.graph)
    # tf2onnx's note names the traced function, whose uid counts the functions traced before in this process.
    proto.graph.doc_string = "converted by tf2onnx from the bundle's model.keras"
    for key, value in job["metadata"].items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(proto)
    Path(job["out"]).write_bytes(proto.SerializeToString())
    return {"opset": job["opset"], "embedding_dim": embedding_dim}


# tf2onnx's names are not the same from run to run: it numbers what it makes with a process-wide counter
# (``Squeeze__135``), and of identical constants and nodes it merges it keeps whichever its iteration meets first
# (``const_axes__3`` or ``const_fold_opt__3__4``, ``lstm_1/zeros`` or ``lstm_1/zeros_1``). The same model came out
# as different bytes (another sha256 in the manifest), its nodes, tensors and values identical.


def canonical_order(graph: Any) -> None:
    """Put a graph's nodes in one topological order that depends on what they compute, not on their names nor
    on the order tf2onnx emitted them (its sort breaks ties differently from run to run): among the nodes whose
    inputs are ready, the one with the smallest signature (a hash of its op, attributes and inputs' signatures,
    a constant's by its value) comes first."""
    sig: dict[str, str] = {v.name: "input:" + v.name for v in graph.input} | {"": ""}
    for init in graph.initializer:
        blank = type(init)()
        blank.CopyFrom(init)
        blank.name = ""
        sig[init.name] = hashlib.sha256(blank.SerializeToString()).hexdigest()
    node_sig = []
    for node in graph.node:  # already topological (ONNX requires it): every input's signature is known
        attrs = sorted((a.name, a.SerializeToString()) for a in node.attribute)
        h = hashlib.sha256(repr((node.op_type, attrs, [sig.get(n, "outer:" + n) for n in node.input])).encode())
        node_sig.append(h.hexdigest())
        for k, out in enumerate(node.output):
            sig[out] = f"{node_sig[-1]}:{k}"
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}
    missing = [sum(1 for n in node.input if n in producer) for node in graph.node]
    consumers: dict[int, list[int]] = {}
    for i, node in enumerate(graph.node):
        for n in node.input:
            if n in producer:
                consumers.setdefault(producer[n], []).append(i)
    ready = [(node_sig[i], i) for i, m in enumerate(missing) if m == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for j in consumers.get(i, []):
            missing[j] -= 1
            if missing[j] == 0:
                heapq.heappush(ready, (node_sig[j], j))
    copies = []
    for i in order:
        copies.append(type(graph.node[i])())
        copies[-1].CopyFrom(graph.node[i])
    del graph.node[:]
    graph.node.extend(copies)


def stable_names(graph: Any) -> None:
    """Name a graph by its structure alone, so the same model gives the same bytes: the model's own inputs and
    outputs keep their names; constants become ``const_K`` in order of first use (and are stored in that order),
    other tensors ``t_K`` in order of appearance, nodes ``OpType_K``, symbolic dimensions (tf2onnx's ``unk__141``
    for the batch, numbered by the same process-wide counter) ``dim_K``. One renaming over the graph and its
    subgraphs (a loop body reads outer names), so the graph stays the same graph."""
    keep = {v.name for v in (*graph.input, *graph.output)} | {""}  # "" marks an omitted optional input
    consts = {i.name for i in graph.initializer}
    names: dict[str, str] = {}
    dims: dict[str, str] = {}
    counts = {"const": 0, "t": 0, "node": 0}

    def renamed(name: str) -> str:
        if name in keep:
            return name
        if name not in names:
            kind = "const" if name in consts else "t"
            counts[kind] += 1
            names[name] = f"{kind}_{counts[kind]}"
        return names[name]

    def named_dims(values: Any) -> None:
        for v in values:
            for d in v.type.tensor_type.shape.dim:
                if d.dim_param:  # one name per distinct symbol: equal names still mean equal sizes
                    d.dim_param = dims.setdefault(d.dim_param, f"dim_{len(dims) + 1}")

    def visit(g: Any) -> None:
        for v in g.input:  # a subgraph's own inputs (the main graph's are kept)
            v.name = renamed(v.name)
        named_dims(g.input)
        for node in g.node:
            node.input[:] = [renamed(n) for n in node.input]
            node.output[:] = [renamed(n) for n in node.output]
            counts["node"] += 1
            node.name = f"{node.op_type}_{counts['node']}"
            for attr in node.attribute:
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    visit(sub)
        for items in (g.output, g.initializer, g.value_info):
            for item in items:
                item.name = renamed(item.name)
        named_dims(g.output)
        named_dims(sorted(g.value_info, key=lambda v: (len(v.name), v.name)))  # by name, not tf2onnx's order

    visit(graph)
    copies = []
    for init in sorted(graph.initializer, key=lambda i: (len(i.name), i.name)):  # const_2 before const_10
        copies.append(type(init)())
        copies[-1].CopyFrom(init)
    del graph.initializer[:]
    graph.initializer.extend(copies)


def _onnx_static(job: dict[str, Any]) -> dict[str, Any]:
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calib = np.load(job["calib"]).astype(np.float32)
    input_name = ort.InferenceSession(job["source"], providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calib[i : i + 1] for i in range(calib.shape[0]))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {input_name: batch}

    pre = job["out"] + ".pre.onnx"
    try:
        quant_pre_process(job["source"], pre, skip_symbolic_shape=False)
        # uint8 activations and weights: the one choice that gave the same integers on x86 and aarch64.
        # With int8 activations ORT's aarch64 kernels round differently from x86's (28 of 300 windows off by
        # 1-2 output steps, benchmarks/pi_arm64_check.sh); u8s8 and u8u8 were bit-exact on all 300, and u8u8
        # also avoids the u8s8 int16 saturation of x86 cores without VNNI (onnxruntime's quantization docs).
        quantize_static(pre, job["out"], Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8)
    finally:
        Path(pre).unlink(missing_ok=True)
    return {}


def run_job(job_path: str) -> None:
    """Convert one job file; raises (or dies, for the fault hook) when the conversion fails."""
    import keras

    # A fresh Keras state per job: layer names and the TF graph do not carry over from the previous job.
    keras.backend.clear_session()
    job = json.loads(Path(job_path).read_text())
    if os.environ.get(FAULT_ENV) == f"{job['format']}:{job['mode']}":
        os.kill(os.getpid(), signal.SIGSEGV)
    if os.environ.get(FAULT_ENV) == f"{job['format']}:{job['mode']}:unloadable":
        # A "successful" conversion whose file no interpreter can load (the parent must not register it).
        Path(job["out"]).write_bytes(b"TFL3" + bytes(60))
        Path(job["result"]).write_text(json.dumps({"ops": []}))
        return
    result = convert_tflite(job) if job["format"] == "tflite" else convert_onnx(job)
    Path(job["result"]).write_text(json.dumps(result))


def serve() -> int:
    """Take job paths from stdin, one per line, and answer ``ok`` for each on the original stdout.

    Everything else that would go to stdout (converter prints, C++ logs) goes to stderr, so the answers are
    the only bytes on the protocol pipe. An exception ends the process: the parent reads why from stderr.
    """
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for line in sys.stdin:
        if line.strip():
            run_job(line.strip())
            proto.write("ok\n")
    return 0


def main(argv: list[str]) -> int:
    """``--serve`` (what hartool.export.jobs runs) or one job file (by hand, for debugging a converter)."""
    if argv[1:] == ["--serve"]:
        return serve()
    run_job(argv[1])
    return 0


if __name__ == "__main__":
    from hartool.train.tflog import import_tensorflow_quietly

    import_tensorflow_quietly()
    sys.exit(main(sys.argv))
