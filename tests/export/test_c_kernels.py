"""Each C kernel on its own against the TFLite Micro interpreter: random shapes, data and quantization
parameters (hypothesis), one hand-built single-op model each, every output value compared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from c_testing import OneOp, T, build_graph_c, build_tflite, need_gcc, options, run_c, run_tflm, tflm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.usefixtures("_oracle")
SETTINGS = settings(max_examples=4, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
scales = st.floats(2e-3, 0.2)
zps = st.integers(-128, 127)
N = 16  # random inputs per example


@pytest.fixture()
def _oracle() -> None:
    tflm()
    need_gcc()


def _act(shape: list[int], s: float, z: int) -> T:
    return T(shape, np.int8, [s], [z])


def _check(m: OneOp, tmp: Path, seed: int) -> None:
    """C output == TFLM output for N random int8 (or float) inputs."""
    model = build_tflite(m)
    (tmp / "m.tflite").write_bytes(model)
    exe = build_graph_c(tmp / "m.tflite", tmp / "c")
    rng = np.random.default_rng(seed)
    ins = []
    for t in m.inputs:
        if t.data is None:
            if np.dtype(t.dtype) == np.float32:
                ins.append(rng.normal(0, 3, (N, *t.shape)).astype(np.float32))
            else:
                ins.append(rng.integers(-128, 128, (N, *t.shape), dtype=np.int8))
    want = run_tflm(model, ins)
    got = run_c(exe, ins, want.dtype, want.shape[1])
    np.testing.assert_array_equal(got, want)


def _tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("k")


@SETTINGS
@given(st.integers(3, 20), st.integers(1, 8), st.integers(1, 8), st.integers(1, 7), st.sampled_from([1, 2]),
       st.sampled_from([0, 1]), st.sampled_from([0, 1, 3]), scales, zps, scales, zps, st.booleans(), st.integers(0, 99))
def test_conv_2d(tmp_path_factory, w, cin, cout, k, stride, padding, act, si, zi, so, zo, per_channel, seed) -> None:
    rng = np.random.default_rng(seed)
    k = min(k, w) if padding == 1 else k
    wscale = rng.uniform(1e-3, 2e-2, cout if per_channel else 1)
    out_w = -(-w // stride) if padding == 0 else (w - k) // stride + 1
    filt = T([cout, 1, k, cin], np.int8, list(wscale), [0] * len(wscale),
             rng.integers(-127, 128, (cout, 1, k, cin), dtype=np.int8))
    bias = T([cout], np.int32, list(np.float32(si) * wscale.astype(np.float32)), [0] * len(wscale),
             rng.integers(-4000, 4000, cout, dtype=np.int32))
    opts = options("Conv2DOptionsT", padding=padding, strideW=stride, strideH=1, fusedActivationFunction=act,
                   dilationWFactor=1, dilationHFactor=1)
    m = OneOp("CONV_2D", [_act([1, 1, w, cin], si, zi), filt, bias], _act([1, 1, out_w, cout], so, zo),
              opts, "Conv2DOptions", version=3)
    _check(m, _tmp(tmp_path_factory), seed)


@SETTINGS
@given(st.integers(2, 6), st.integers(3, 9), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3),
       st.sampled_from([1, 2]), st.sampled_from([0, 1]), scales, zps, scales, zps, st.integers(0, 99))
def test_conv_2d_two_dimensional(tmp_path_factory, h, w, cin, cout, k, stride, padding, si, zi, so, zo, seed) -> None:
    """Filters taller than one row take the generic kernel (hk_conv2d), not the 1-D one."""
    rng = np.random.default_rng(seed)
    k = min(k, h, w)
    wscale = rng.uniform(1e-3, 2e-2, cout)
    out_h, out_w = ((-(-n // stride) if padding == 0 else (n - k) // stride + 1) for n in (h, w))
    filt = T([cout, k, k, cin], np.int8, list(wscale), [0] * cout, rng.integers(-127, 128, (cout, k, k, cin), dtype=np.int8))
    bias = T([cout], np.int32, list(np.float32(si) * wscale.astype(np.float32)), [0] * cout,
             rng.integers(-4000, 4000, cout, dtype=np.int32))
    opts = options("Conv2DOptionsT", padding=padding, strideW=stride, strideH=stride, fusedActivationFunction=1,
                   dilationWFactor=1, dilationHFactor=1)
    m = OneOp("CONV_2D", [_act([1, h, w, cin], si, zi), filt, bias], _act([1, out_h, out_w, cout], so, zo),
              opts, "Conv2DOptions", version=3)
    _check(m, _tmp(tmp_path_factory), seed)


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 10), scales, zps, scales, zps, st.booleans(), st.sampled_from([0, 1]),
       st.integers(0, 99))
def test_fully_connected(tmp_path_factory, depth, units, si, zi, so, zo, per_channel, act, seed) -> None:
    rng = np.random.default_rng(seed)
    wscale = rng.uniform(1e-3, 2e-2, units if per_channel else 1)
    filt = T([units, depth], np.int8, list(wscale), [0] * len(wscale),
             rng.integers(-127, 128, (units, depth), dtype=np.int8))
    bias = T([units], np.int32, list(np.float32(si) * wscale.astype(np.float32)), [0] * len(wscale),
             rng.integers(-4000, 4000, units, dtype=np.int32))
    opts = options("FullyConnectedOptionsT", fusedActivationFunction=act)
    m = OneOp("FULLY_CONNECTED", [_act([1, depth], si, zi), filt, bias], _act([1, units], so, zo), opts,
              "FullyConnectedOptions", version=4 if per_channel else 1)
    _check(m, _tmp(tmp_path_factory), seed)


@SETTINGS
@given(st.integers(2, 20), st.integers(1, 8), st.integers(1, 3), st.sampled_from([1, 2]), st.sampled_from([0, 1]),
       scales, zps, st.integers(0, 99))
def test_max_pool_2d(tmp_path_factory, w, c, k, stride, padding, s, z, seed) -> None:
    k = min(k, w)
    out_w = -(-w // stride) if padding == 0 else (w - k) // stride + 1
    opts = options("Pool2DOptionsT", padding=padding, strideW=stride, strideH=1, filterWidth=k, filterHeight=1)
    m = OneOp("MAX_POOL_2D", [_act([1, 1, w, c], s, z)], _act([1, 1, out_w, c], s, z), opts, "Pool2DOptions", 2)
    _check(m, _tmp(tmp_path_factory), seed)


def _axis() -> T:
    return T([1], np.int32, data=np.array([1], np.int32))


@SETTINGS
@given(st.integers(1, 130), st.integers(1, 8), scales, zps, scales, zps, st.integers(0, 99))
def test_mean(tmp_path_factory, n, c, si, zi, so, zo, seed) -> None:
    m = OneOp("MEAN", [_act([1, n, c], si, zi), _axis()], _act([1, c], so, zo),
              options("ReducerOptionsT", keepDims=False), "ReducerOptions", 2)
    _check(m, _tmp(tmp_path_factory), seed)


@SETTINGS
@given(st.integers(1, 130), st.integers(1, 8), scales, zps, st.integers(0, 99))
def test_reduce_max(tmp_path_factory, n, c, s, z, seed) -> None:
    m = OneOp("REDUCE_MAX", [_act([1, n, c], s, z), _axis()], _act([1, c], s, z),
              options("ReducerOptionsT", keepDims=False), "ReducerOptions", 2)
    _check(m, _tmp(tmp_path_factory), seed)


@SETTINGS
@given(st.sampled_from(["MUL", "ADD"]), st.integers(1, 20), st.integers(1, 8), st.sampled_from(["same", "row", "scalar"]),
       scales, zps, scales, zps, scales, zps, st.integers(0, 99))
def test_mul_add_broadcast(tmp_path_factory, op, n, c, bshape, s1, z1, s2, z2, so, zo, seed) -> None:
    shape2 = {"same": [1, n, c], "row": [c], "scalar": []}[bshape]
    name = "MulOptions" if op == "MUL" else "AddOptions"
    m = OneOp(op, [_act([1, n, c], s1, z1), _act(shape2, s2, z2)], _act([1, n, c], so, zo),
              options(f"{name}T", fusedActivationFunction=0), name, 2)
    _check(m, _tmp(tmp_path_factory), seed)


@SETTINGS
@given(st.integers(1, 4), st.integers(2, 12), st.floats(1e-3, 0.5), zps, st.integers(0, 99))
def test_softmax(tmp_path_factory, rows, depth, s, z, seed) -> None:
    m = OneOp("SOFTMAX", [_act([rows, depth], s, z)], _act([rows, depth], 1 / 256, -128),
              options("SoftmaxOptionsT", beta=1.0), "SoftmaxOptions", 2)
    _check(m, _tmp(tmp_path_factory), seed)


@SETTINGS
@given(st.integers(1, 20), st.integers(1, 20), scales, zps, st.integers(0, 99))
def test_concatenation(tmp_path_factory, a, b, s, z, seed) -> None:
    m = OneOp("CONCATENATION", [_act([1, a], s, z), _act([1, b], s, z)], _act([1, a + b], s, z),
              options("ConcatenationOptionsT", axis=-1), "ConcatenationOptions", 2)
    _check(m, _tmp(tmp_path_factory), seed)


@SETTINGS
@given(st.integers(1, 64), scales, zps, st.integers(0, 99))
def test_quantize_dequantize(tmp_path_factory, n, s, z, seed) -> None:
    _check(OneOp("QUANTIZE", [T([1, n], np.float32)], _act([1, n], s, z)), _tmp(tmp_path_factory), seed)
    _check(OneOp("DEQUANTIZE", [_act([1, n], s, z)], T([1, n], np.float32), version=2), _tmp(tmp_path_factory), seed)


def test_unsupported_op_is_one_line_listing_the_supported(tmp_path: Path) -> None:
    from hartool.core.errors import ExportError

    m = OneOp("TANH", [_act([1, 4], 0.1, 0)], _act([1, 4], 1 / 128, 0))
    (tmp_path / "m.tflite").write_bytes(build_tflite(m))
    with pytest.raises(ExportError, match=r"operator TANH is not supported by the C generator; supported: QUANTIZE"):
        build_graph_c(tmp_path / "m.tflite", tmp_path / "c")
