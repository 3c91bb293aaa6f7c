"""A .tflite flatbuffer as plain data (tensors with quantization and constant data, operators with options).

Read with TensorFlow's generated schema (as `export.tflite_ops` does); nothing here knows about C.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import ExportError

# TFLite TensorType codes -> numpy dtypes the generator handles.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:;/+=-]")
DTYPES = {0: np.dtype(np.float32), 2: np.dtype(np.int32), 9: np.dtype(np.int8), 4: np.dtype(np.int64)}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scales: np.ndarray            # float32, empty when not quantized
    zero_points: np.ndarray       # int64
    data: np.ndarray | None       # constant contents, shaped, or None for activations

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def scale(self) -> float:
        """The per-tensor scale (float32 value, as TFLite stores it)."""
        if self.scales.size != 1:
            raise ExportError(f"tensor {self.name!r} is not per-tensor quantized")
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0]) if self.zero_points.size else 0


@dataclass
class Operator:
    op: str                       # builtin name, e.g. "CONV_2D"
    version: int
    inputs: list[int]             # tensor indices, -1 = optional input left out
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]


def safe_name(raw: bytes | None, default: str) -> str:
    """A name from the (untrusted) model file, reduced to characters safe in messages and C comments."""
    text = raw.decode("utf-8", "replace") if raw else default
    return _UNSAFE.sub("_", text)[:80]


def _tensor(i: int, t: Any, buffers: list[Any]) -> Tensor:
    dtype = DTYPES.get(t.type)
    name = safe_name(t.name, f"t{i}")
    if dtype is None:
        raise ExportError(f"tensor {name!r} has TFLite type {t.type}; supported: float32, int8, int32")
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    q = t.quantization
    scales = np.asarray(q.scale if q is not None and q.scale is not None else [], dtype=np.float32)
    zps = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], dtype=np.int64)
    if q is not None and scales.size > 1 and q.quantizedDimension != 0:
        raise ExportError(f"tensor {name!r} is quantized along dimension {q.quantizedDimension}; supported: 0")
    raw = buffers[t.buffer].data if t.buffer < len(buffers) else None
    data = None
    if raw is not None and len(raw):
        data = np.frombuffer(bytes(np.asarray(raw, dtype=np.uint8)), dtype=dtype).reshape(shape).copy()
    return Tensor(i, name, shape, dtype, scales, zps, data)


def read_graph(path: str | Path) -> Graph:
    """The first subgraph of a .tflite model; one clear `ExportError` for anything this reader cannot hold."""
    from tensorflow.lite.python import schema_py_generated as schema

    buf = Path(path).read_bytes()
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(buf, 0))
    except (ValueError, IndexError, TypeError) as exc:  # what flatbuffers raises on garbage
        raise ExportError(f"{path}: not a valid TFLite flatbuffer ({exc})") from exc
    if len(model.subgraphs) != 1:
        raise ExportError(f"{path}: {len(model.subgraphs)} subgraphs; the C generator supports one")
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    sub = model.subgraphs[0]
    buffers = list(model.buffers or [])
    tensors = [_tensor(i, t, buffers) for i, t in enumerate(sub.tensors)]
    ops = []
    for o in sub.operators or []:
        code = model.operatorCodes[o.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = names.get(builtin, str(builtin)) if builtin != schema.BuiltinOperator.CUSTOM else \
            f"CUSTOM:{safe_name(code.customCode, '')}"
        opts = {k: v for k, v in vars(o.builtinOptions).items()} if o.builtinOptions is not None else {}
        ops.append(Operator(name, int(code.version), [int(i) for i in o.inputs], [int(i) for i in o.outputs], opts))
    return Graph(tensors, ops, [int(i) for i in sub.inputs], [int(i) for i in sub.outputs])
