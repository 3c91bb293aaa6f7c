"""Helpers for the C generator's tests: single-op .tflite models built with TFLite's own schema, the generated C
compiled with the host gcc, and the real TFLite Micro interpreter as the oracle."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hartool.export.c.emit import GraphEmitter
from hartool.export.c.graph import read_graph
from hartool.export.c.library import KERNEL_FILES, kernel_text

HERE = Path(__file__).resolve().parent
TYPES = {np.dtype(np.float32): 0, np.dtype(np.int32): 2, np.dtype(np.int8): 9}
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]


def tflm() -> Any:
    """The tflite-micro runtime module, or a skip saying why (its wheels are x86-64 only)."""
    return pytest.importorskip("tflite_micro.python.tflite_micro.runtime",
                               reason="tflite-micro (dev extra, x86-64 wheels only) is not installed")


def need_gcc() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no host gcc to build the generated C")
    return gcc


@dataclass
class T:
    """A tensor of a hand-built model: shape, dtype, quantization and (for constants) data."""

    shape: list[int]
    dtype: Any = np.int8
    scale: list[float] | None = None
    zero_point: list[int] | None = None
    data: np.ndarray | None = None
    dim: int = 0


@dataclass
class OneOp:
    op: str
    inputs: list[T]
    output: T
    options: Any = None
    options_type: str | None = None
    version: int = 1
    extra_outputs: list[T] = field(default_factory=list)


def build_tflite(m: OneOp) -> bytes:
    """A one-operator TFLite flatbuffer (TFLite's generated schema, packed with flatbuffers)."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as s

    buffers = [s.BufferT()]
    tensors = []
    for i, t in enumerate([*m.inputs, m.output]):
        tt = s.TensorT()
        tt.shape, tt.type, tt.name = np.asarray(t.shape, np.int32), TYPES[np.dtype(t.dtype)], f"t{i}".encode()
        tt.buffer = 0
        if t.data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(t.data, dtype=t.dtype).tobytes(), np.uint8)
            buffers.append(b)
            tt.buffer = len(buffers) - 1
        if t.scale is not None:
            q = s.QuantizationParametersT()
            q.scale, q.zeroPoint, q.quantizedDimension = list(map(float, t.scale)), list(map(int, t.zero_point)), t.dim
            tt.quantization = q
        tensors.append(tt)
    code = s.OperatorCodeT()
    code.builtinCode = getattr(s.BuiltinOperator, m.op)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = m.version
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, list(range(len(m.inputs))), [len(m.inputs)]
    if m.options is not None:
        op.builtinOptionsType, op.builtinOptions = getattr(s.BuiltinOptions, m.options_type), m.options
    sub = s.SubGraphT()
    sub.tensors, sub.operators, sub.outputs = tensors, [op], [len(m.inputs)]
    sub.inputs = [i for i, t in enumerate(m.inputs) if t.data is None]
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [sub], buffers
    model.description = b"hartool test"
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def options(name: str, **kw: Any) -> Any:
    from tensorflow.lite.python import schema_py_generated as s

    o = getattr(s, name)()
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def build_graph_c(tflite: Path, out: Path) -> Path:
    """Generate the graph's C, compile it with the binary stdin/stdout harness, return the executable."""
    files = GraphEmitter(read_graph(tflite)).source()
    files.update({name: kernel_text(name) for name in KERNEL_FILES})
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    shutil.copy(HERE / "c_harness.c", out / "c_harness.c")
    exe = out / "graph"
    subprocess.run([need_gcc(), *CFLAGS, "-o", str(exe), *sorted(str(p) for p in out.glob("*.c")), "-lm"],
                   check=True, capture_output=True, text=True, timeout=120)
    return exe


def run_c(exe: Path, inputs: list[np.ndarray], out_dtype: Any, out_size: int) -> np.ndarray:
    """Feed each window's graph inputs (arrays (n, ...)) and return the outputs, shape (n, out_size)."""
    n = len(inputs[0])
    blob = b"".join(b"".join(np.ascontiguousarray(x[i]).tobytes() for x in inputs) for i in range(n))
    res = subprocess.run([str(exe)], input=blob, capture_output=True, check=True, timeout=300)
    return np.frombuffer(res.stdout, dtype=out_dtype).reshape(n, out_size)


def run_tflm(model: bytes, inputs: list[np.ndarray], output: int = 0) -> np.ndarray:
    it = tflm().Interpreter.from_bytes(model)
    outs = []
    for i in range(len(inputs[0])):
        for k, x in enumerate(inputs):
            it.set_input(x[i], k)
        it.invoke()
        outs.append(np.array(it.get_output(output)).ravel())
    return np.stack(outs)
