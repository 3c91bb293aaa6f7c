"""TFLite's integer requantization parameters, computed at export exactly as TFLite Micro computes them at Prepare."""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> int:
    """``std::round``: halves away from zero (Python's ``round`` goes to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(Q0.31 multiplier, shift) with real ~= multiplier * 2**(shift - 31), TFLite's QuantizeMultiplier."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    fixed = round_half_away(q * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:  # flushes tiny multipliers to zero, as TFLite does
        return 0, 0
    return fixed, shift


def conv_multipliers(in_scale: float, filter_scales: np.ndarray, out_scale: float,
                     channels: int) -> tuple[list[int], list[int]]:
    """Per-output-channel (multiplier, shift) lists from ``double(s_in) * s_w / s_out`` (per-tensor expanded)."""
    scales = [float(s) for s in np.broadcast_to(filter_scales.astype(np.float32), (channels,))]
    pairs = [quantize_multiplier(float(in_scale) * s / float(out_scale)) for s in scales]
    return [m for m, _ in pairs], [s for _, s in pairs]


def quantize_value(x: float, scale: float, zero_point: int) -> int:
    """TFLite's Quantize helper for activation bounds: ``zp + round(float(x) / float(scale))`` in float32."""
    return zero_point + round_half_away(float(np.float32(x) / np.float32(scale)))


def activation_range(activation: int, scale: float, zero_point: int) -> tuple[int, int]:
    """int8 clamp bounds of a fused activation (0 NONE, 1 RELU, 2 RELU_N1_TO_1, 3 RELU6)."""
    if activation == 0:
        return INT8_MIN, INT8_MAX
    lo, hi = {1: (0.0, None), 2: (-1.0, 1.0), 3: (0.0, 6.0)}[activation]
    act_min = max(INT8_MIN, quantize_value(lo, scale, zero_point))
    act_max = INT8_MAX if hi is None else min(INT8_MAX, quantize_value(hi, scale, zero_point))
    return act_min, act_max


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """MEAN's multiplier with the element count folded in (TFLite's QuantizedMeanOrSum)."""
    mult, shift = quantize_multiplier(float(in_scale) / float(out_scale))
    s = min(count.bit_length() - 1, 32, 31 + shift)
    return (mult << s) // count, shift - s


def add_multipliers(s1: float, s2: float, s_out: float) -> dict[str, int]:
    """ADD int8: inputs rescaled to twice the larger input scale with a left shift of 20."""
    twice_max = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    m1, sh1 = quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << 20) * float(s_out)))
    return {"in1_multiplier": m1, "in1_shift": sh1, "in2_multiplier": m2, "in2_shift": sh2,
            "out_multiplier": mo, "out_shift": sho, "left_shift": 20}


def softmax_params(beta: float, in_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) of int8 SOFTMAX (Q5.26 exp input)."""
    real = min(float(np.float32(beta)) * float(in_scale) * (1 << 26), (1 << 31) - 1.0)
    mult, left_shift = quantize_multiplier(real)
    radius = math.floor(1.0 * ((1 << 5) - 1) * (1 << 26) / (1 << left_shift))
    return mult, left_shift, -radius
