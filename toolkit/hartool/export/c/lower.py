"""Each supported TFLite operator lowered to one call of a C kernel with its parameters fixed at export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from ...core.errors import ExportError
from . import quant
from .graph import Graph, Operator, Tensor

FLOAT, INT8 = np.dtype(np.float32), np.dtype(np.int8)


class Sink(Protocol):
    """What a lowering needs from the emitter: tensors, C expressions for their data, and declarations."""

    graph: Graph

    def ptr(self, t: int) -> str: ...
    def array(self, ctype: str, values: Any) -> str: ...
    def struct(self, ctype: str, fields: dict[str, Any]) -> str: ...
    def scratch(self) -> str: ...


def _t(sink: Sink, i: int) -> Tensor:
    return sink.graph.tensors[i]


def _require(cond: bool, op: Operator, what: str) -> None:
    if not cond:
        raise ExportError(f"{op.op}: {what} is not supported by the C generator")


def _types(sink: Sink, op: Operator, ins: tuple[np.dtype, ...], out: np.dtype) -> None:
    got = [_t(sink, i).dtype for i in op.inputs[:len(ins)] if i >= 0]
    _require(got == list(ins) and _t(sink, op.outputs[0]).dtype == out, op,
             f"types {[str(g) for g in got]} -> {_t(sink, op.outputs[0]).dtype}")


def _nhwc(t: Tensor, op: Operator) -> tuple[int, int, int]:
    _require(len(t.shape) == 4 and t.shape[0] == 1, op, f"shape {list(t.shape)} (need batch 1, NHWC)")
    return t.shape[1], t.shape[2], t.shape[3]


def _padding(padding: int, stride: int, dilation: int, size: int, k: int, out: int) -> int:
    """TFLite's ComputePaddingHeightWidth: SAME pads floor(total/2) before; VALID pads nothing."""
    if padding == 1:  # VALID
        return 0
    effective = (k - 1) * dilation + 1
    return max(((out - 1) * stride + effective - size) // 2, 0)


def _act(op: Operator, out: Tensor) -> tuple[int, int]:
    act = int(op.options.get("fusedActivationFunction", 0))
    _require(act in (0, 1, 2, 3), op, f"fused activation {act}")
    return quant.activation_range(act, out.scale, out.zero_point)


WINDOWS = 8  # hk_conv1d's windows per pass (HK_WINDOWS in the kernels)


def _conv1d_plan(graph: Graph, op: Operator) -> dict[str, Any] | None:
    """hk_conv1d's geometry for a CONV_2D over a 1-D signal (input and filter height 1, no dilation), else None."""
    x, w, y = (graph.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if len(x.shape) != 4 or len(y.shape) != 4 or w.data is None or len(w.shape) != 4:
        return None
    if x.shape[1] != 1 or w.shape[1] != 1 or y.shape[1] != 1 or op.options.get("dilationWFactor", 1) != 1:
        return None
    iw, ic, ow = x.shape[2], x.shape[3], y.shape[2]
    k, stride = w.shape[2], op.options["strideW"]
    pad = _padding(op.options["padding"], stride, 1, iw, k, ow)
    taps = -(-k * ic // 4) * 4
    # the row holds the padded input and the reach of one pass of WINDOWS windows (see hk_conv1d)
    row = -(-max((pad + iw) * ic, (max(ow, WINDOWS) - 1) * stride * ic + taps) // 8) * 8
    return {"in_w": iw, "in_c": ic, "out_w": ow, "stride": stride, "pad": pad, "taps": taps, "row_bytes": row}


def scratch_bytes(graph: Graph, op: Operator) -> int:
    """Arena bytes an op needs while it runs (hk_conv1d: padded input row and WINDOWS gathered windows), else 0."""
    plan = _conv1d_plan(graph, op) if op.op == "CONV_2D" else None
    return plan["row_bytes"] + 2 * WINDOWS * plan["taps"] if plan else 0


def _conv1d_filter(w: np.ndarray, taps: int) -> np.ndarray:
    """[out_c][taps]: each filter's weights flattened and zero-padded to ``taps``."""
    flat = w.reshape(w.shape[0], -1)
    padded = np.zeros((w.shape[0], taps), np.int8)
    padded[:, :flat.shape[1]] = flat
    return padded


def conv_2d(sink: Sink, op: Operator) -> str:
    _types(sink, op, (INT8, INT8), INT8)
    x, w, y = _t(sink, op.inputs[0]), _t(sink, op.inputs[1]), _t(sink, op.outputs[0])
    (ih, iw, ic), (oh, ow, oc) = _nhwc(x, op), _nhwc(y, op)
    _require(w.data is not None and w.shape[3] == ic, op, "non-constant or grouped filter")
    _require(not np.any(w.zero_points), op, "asymmetric filter")
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    _require(bias < 0 or _t(sink, bias).dtype == np.int32, op, "non-int32 bias")
    mult, shift = quant.conv_multipliers(x.scale, w.scales, y.scale, oc)
    lo, hi = _act(op, y)
    flat = w.data.reshape(oc, -1).astype(np.int64)
    sums = flat.sum(axis=1)
    plan = _conv1d_plan(sink.graph, op)
    # sum(w * (x + in_offset)) + bias = sum(w * x) + (bias + in_offset * sum(w)): the second term is fixed at
    # export (integers, so exact); the generic kernel is kept for 2-D filters and unbounded accumulators
    bias_data = _t(sink, bias).data if bias >= 0 else np.zeros(oc, np.int64)
    if bias_data is None:  # a bias computed at run time cannot be folded
        plan = None
        bias_data = np.zeros(oc, np.int64)
    folded = bias_data.astype(np.int64) - x.zero_point * sums
    # hk_conv1d's requantization needs |acc| * 2^left < 2^30 (inputs are int8, so |x| <= 128)
    bound = (np.abs(folded) + 128 * np.abs(flat).sum(axis=1)) << np.maximum(shift, 0)
    if plan is not None and np.all(bound < 2**30):
        p = sink.struct("hk_conv1d_params", dict(
            plan, out_c=oc, in_zero_point=x.zero_point, out_offset=y.zero_point, act_min=lo, act_max=hi,
            filter=sink.array("int8_t", _conv1d_filter(w.data, plan["taps"])), bias=sink.array("int32_t", folded),
            multiplier=sink.array("int32_t", mult), shift=sink.array("int8_t", shift), scratch=sink.scratch()))
        return f"hk_conv1d(&{p}, {sink.ptr(op.inputs[0])}, {sink.ptr(op.outputs[0])});"
    o = op.options
    sh, sw, dh, dw = o["strideH"], o["strideW"], o["dilationHFactor"], o["dilationWFactor"]
    p = sink.struct("hk_conv_params", dict(
        in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=w.shape[1], k_w=w.shape[2],
        stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw,
        pad_h=_padding(o["padding"], sh, dh, ih, w.shape[1], oh), pad_w=_padding(o["padding"], sw, dw, iw, w.shape[2], ow),
        in_offset=-x.zero_point, out_offset=y.zero_point, act_min=lo, act_max=hi,
        filter=sink.ptr(op.inputs[1]), bias=sink.ptr(bias) if bias >= 0 else "0",
        filter_sums=sink.array("int32_t", sums),
        multiplier=sink.array("int32_t", mult), shift=sink.array("int8_t", shift)))
    return f"hk_conv2d(&{p}, {sink.ptr(op.inputs[0])}, {sink.ptr(op.outputs[0])});"


def max_pool_2d(sink: Sink, op: Operator) -> str:
    _types(sink, op, (INT8,), INT8)
    x, y = _t(sink, op.inputs[0]), _t(sink, op.outputs[0])
    _require((x.scale, x.zero_point) == (y.scale, y.zero_point), op, "requantizing pool")
    (ih, iw, c), (oh, ow, _) = _nhwc(x, op), _nhwc(y, op)
    o = op.options
    kh, kw, sh, sw = o["filterHeight"], o["filterWidth"], o["strideH"], o["strideW"]
    lo, hi = _act(op, y)
    p = sink.struct("hk_pool_params", dict(
        in_h=ih, in_w=iw, c=c, out_h=oh, out_w=ow, k_h=kh, k_w=kw, stride_h=sh, stride_w=sw,
        pad_h=_padding(o["padding"], sh, 1, ih, kh, oh), pad_w=_padding(o["padding"], sw, 1, iw, kw, ow),
        act_min=lo, act_max=hi))
    return f"hk_max_pool(&{p}, {sink.ptr(op.inputs[0])}, {sink.ptr(op.outputs[0])});"


def fully_connected(sink: Sink, op: Operator) -> str:
    _types(sink, op, (INT8, INT8), INT8)
    x, w, y = _t(sink, op.inputs[0]), _t(sink, op.inputs[1]), _t(sink, op.outputs[0])
    _require(w.data is not None and len(w.shape) == 2, op, "non-constant or non-2-D weights")
    _require(op.options.get("weightsFormat", 0) == 0, op, "shuffled weights")
    units, depth = w.shape
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    _require(bias < 0 or _t(sink, bias).dtype == np.int32, op, "non-int32 bias")
    mult, shift = quant.conv_multipliers(x.scale, w.scales, y.scale, units)
    lo, hi = _act(op, y)
    p = sink.struct("hk_fc_params", dict(
        batches=x.size // depth, depth=depth, units=units, in_offset=-x.zero_point,
        filter_offset=-int(w.zero_points[0]) if w.zero_points.size else 0, out_offset=y.zero_point,
        act_min=lo, act_max=hi, filter=sink.ptr(op.inputs[1]), bias=sink.ptr(bias) if bias >= 0 else "0",
        multiplier=sink.array("int32_t", mult), shift=sink.array("int8_t", shift)))
    return f"hk_fully_connected(&{p}, {sink.ptr(op.inputs[0])}, {sink.ptr(op.outputs[0])});"


def _reduce_split(sink: Sink, op: Operator) -> tuple[int, int, int]:
    """(outer, reduce, inner) of a reduction over contiguous axes."""
    x, axis = _t(sink, op.inputs[0]), _t(sink, op.inputs[1])
    _require(axis.data is not None, op, "non-constant axis")
    axes = sorted({int(a) % len(x.shape) for a in np.ravel(axis.data)})
    _require(axes == list(range(axes[0], axes[-1] + 1)), op, f"non-contiguous axes {axes}")
    dims = list(x.shape)
    return (int(np.prod(dims[:axes[0]], dtype=np.int64)), int(np.prod(dims[axes[0]:axes[-1] + 1], dtype=np.int64)),
            int(np.prod(dims[axes[-1] + 1:], dtype=np.int64)))


def mean(sink: Sink, op: Operator) -> str:
    _types(sink, op, (INT8,), INT8)
    x, y = _t(sink, op.inputs[0]), _t(sink, op.outputs[0])
    outer, reduce, inner = _reduce_split(sink, op)
    mult, shift = quant.mean_multiplier(x.scale, y.scale, reduce)
    p = sink.struct("hk_mean_params", dict(outer=outer, reduce=reduce, inner=inner, in_zero_point=x.zero_point,
                                           out_zero_point=y.zero_point, multiplier=mult, shift=shift))
    return f"hk_mean(&{p}, {sink.ptr(op.inputs[0])}, {sink.ptr(op.outputs[0])});"


def reduce_max(sink: Sink, op: Operator) -> str:
    _types(sink, op, (INT8,), INT8)
    x, y = _t(sink, op.inputs[0]), _t(sink, op.outputs[0])
    _require((x.scale, x.zero_point) == (y.scale, y.zero_point), op, "requantizing max")
    outer, reduce, inner = _reduce_split(sink, op)
    return f"hk_reduce_max({outer}, {reduce}, {inner}, {sink.ptr(op.inputs[0])}, {sink.ptr(op.outputs[0])});"


def _broadcast(a: Tensor, b: Tensor, out: Tensor, op: Operator) -> dict[str, list[int]]:
    """Output dims and per-input element strides (0 where an input is broadcast), right-aligned to 4-D."""
    _require(len(out.shape) <= 4, op, f"{len(out.shape)}-D broadcasting")
    dims = [1] * (4 - len(out.shape)) + list(out.shape)

    def strides(t: Tensor) -> list[int]:
        shape = [1] * (4 - len(t.shape)) + list(t.shape)
        _require(all(s in (1, d) for s, d in zip(shape, dims, strict=True)), op, f"broadcast {list(t.shape)} -> {list(out.shape)}")
        dense = [int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(4)]
        return [0 if s == 1 else st for s, st in zip(shape, dense, strict=True)]
    return {"dims": dims, "stride1": strides(a), "stride2": strides(b)}


def _binary(sink: Sink, op: Operator, kernel: str, extra: Callable[[Tensor, Tensor, Tensor], dict[str, int]]) -> str:
    _types(sink, op, (INT8, INT8), INT8)
    a, b, y = (_t(sink, i) for i in (*op.inputs[:2], op.outputs[0]))
    lo, hi = _act(op, y)
    fields: dict[str, Any] = dict(_broadcast(a, b, y, op), in1_offset=-a.zero_point, in2_offset=-b.zero_point,
                                  out_offset=y.zero_point, act_min=lo, act_max=hi)
    fields.update(extra(a, b, y))
    p = sink.struct("hk_binary_params", fields)
    return f"{kernel}(&{p}, {sink.ptr(op.inputs[0])}, {sink.ptr(op.inputs[1])}, {sink.ptr(op.outputs[0])});"


def mul(sink: Sink, op: Operator) -> str:
    def extra(a: Tensor, b: Tensor, y: Tensor) -> dict[str, int]:
        m, s = quant.quantize_multiplier(float(a.scale) * float(b.scale) / float(y.scale))
        return {"out_multiplier": m, "out_shift": s}
    return _binary(sink, op, "hk_mul", extra)


def add(sink: Sink, op: Operator) -> str:
    return _binary(sink, op, "hk_add", lambda a, b, y: quant.add_multipliers(a.scale, b.scale, y.scale))


def softmax(sink: Sink, op: Operator) -> str:
    _types(sink, op, (INT8,), INT8)
    x, y = _t(sink, op.inputs[0]), _t(sink, op.outputs[0])
    _require(y.zero_point == -128 and y.scale == np.float32(1.0 / 256), op, "output quantization other than 1/256, -128")
    mult, left, diff_min = quant.softmax_params(op.options.get("beta", 1.0), x.scale)
    depth = x.shape[-1]
    p = sink.struct("hk_softmax_params", dict(rows=x.size // depth, depth=depth, diff_min=diff_min,
                                              input_left_shift=left, input_multiplier=mult))
    return f"hk_softmax(&{p}, {sink.ptr(op.inputs[0])}, {sink.ptr(op.outputs[0])});"


def concatenation(sink: Sink, op: Operator) -> str:
    y = _t(sink, op.outputs[0])
    ins = [_t(sink, i) for i in op.inputs]
    _require(y.dtype == INT8 and all(t.dtype == INT8 for t in ins), op, "non-int8 tensors")
    _require(all((t.scale, t.zero_point) == (y.scale, y.zero_point) for t in ins), op, "requantizing inputs")
    _require(op.options.get("fusedActivationFunction", 0) == 0, op, "fused activation")
    axis = int(op.options.get("axis", 0)) % len(y.shape)
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    chunks = [int(np.prod(t.shape[axis:], dtype=np.int64)) for t in ins]
    srcs = sink.array("int8_t *const", [sink.ptr(i) for i in op.inputs])
    return f"hk_concat({outer}, {len(ins)}, {srcs}, {sink.array('int', chunks)}, {sink.ptr(op.outputs[0])});"


def quantize(sink: Sink, op: Operator) -> str:
    _types(sink, op, (FLOAT,), INT8)
    y = _t(sink, op.outputs[0])
    return (f"hk_quantize({sink.ptr(op.inputs[0])}, {sink.ptr(op.outputs[0])}, {y.size}, "
            f"{float(y.scale)!r}f, {y.zero_point});")


def dequantize(sink: Sink, op: Operator) -> str:
    _types(sink, op, (INT8,), FLOAT)
    x = _t(sink, op.inputs[0])
    return (f"hk_dequantize({sink.ptr(op.inputs[0])}, {sink.ptr(op.outputs[0])}, {x.size}, "
            f"{float(np.float32(x.scale))!r}f, {x.zero_point});")


def reshape(sink: Sink, op: Operator) -> str:
    x = _t(sink, op.inputs[0])
    return f"hk_copy({sink.ptr(op.inputs[0])}, {sink.ptr(op.outputs[0])}, {x.nbytes});"


LOWERINGS: dict[str, Callable[[Sink, Operator], str]] = {
    "QUANTIZE": quantize, "RESHAPE": reshape, "CONV_2D": conv_2d, "MAX_POOL_2D": max_pool_2d, "MEAN": mean,
    "REDUCE_MAX": reduce_max, "MUL": mul, "ADD": add, "CONCATENATION": concatenation,
    "FULLY_CONNECTED": fully_connected, "SOFTMAX": softmax, "DEQUANTIZE": dequantize,
}


def lower(sink: Sink, op: Operator) -> str:
    """The C statement for one operator, or one `ExportError` naming it and listing what is supported."""
    fn = LOWERINGS.get(op.op)
    if fn is None:
        raise ExportError(f"operator {op.op} is not supported by the C generator; supported: {', '.join(LOWERINGS)}")
    return fn(sink, op)
