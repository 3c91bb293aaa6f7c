"""Keras architectures: cnn (int8-friendly CNN-only), lstm, cnn-lstm and bilstm, all from one builder."""

from __future__ import annotations

import copy
from typing import Any

# knn is built from its templates (train/knn.py), not here.
ARCHS = ("cnn", "lstm", "cnn-lstm", "bilstm", "features", "knn")
# Variants of the cnn architecture. "hybrid2" (the default) is a small CNN that also sees per-window
# statistics of its input, computed inside the graph from built-in layers (one input, nothing custom to
# register, every op has an int8 kernel), laid out to keep the mean precise in full int8; "hybrid" is the
# same with the 2026-11-30 statistics; "v1" is the 121k-parameter CNN of turn 1 (95.49 %).
CNN_VARIANTS = ("hybrid", "hybrid2", "small", "v1")
DEFAULT_CNN_VARIANT = "hybrid2"


def _conv_block(x: Any, filters: int, kernel: int, strides: int = 1) -> Any:
    from keras import layers

    # Conv1D + BN + ReLU fold into one int8 CONV_2D at conversion; no op here lacks an int8 kernel.
    x = layers.Conv1D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _extremes(inp: Any) -> tuple[Any, Any]:
    """Per-channel max and min over the window."""
    from keras import layers

    # min(x) = -max(-x): Rescaling is a plain MUL, so no custom layer is needed.
    return layers.GlobalMaxPooling1D()(inp), layers.GlobalMaxPooling1D()(layers.Rescaling(-1.0)(inp))


def _window_stats(inp: Any) -> Any:
    """Per-channel mean, max, min and mean square of the (standardised) window: 4 x C features.

    The classic feature pipelines lean on exactly these (gravity direction separates the postures);
    a CNN that has to rediscover them through ReLUs and pooling learns them less precisely.
    """
    from keras import layers

    mean = layers.GlobalAveragePooling1D()(inp)
    high, low = _extremes(inp)
    energy = layers.GlobalAveragePooling1D()(layers.Multiply()([inp, inp]))
    stats = layers.Concatenate()([mean, high, low, energy])
    return layers.BatchNormalization()(stats)


def _window_stats_int8(inp: Any) -> Any:
    """Per-channel mean, max and min, laid out so full-int8 conversion keeps the mean precise: 3 x C features.

    In :func:`_window_stats` the four statistics share one int8 scale (a CONCATENATION has one), the input's, so
    the mean gravity direction comes out in ~0.075 sd steps (about 1.5 degrees of tilt); the squared input
    spans so wide a range that small values round to 0. A model trained to tell postures apart by the size of
    a tilt (yaw augmentation) then lost 3 pp to int8 on validation. Here the mean is normalised on its own
    before it meets anything else, so its int8 range is the few sd units the means actually span; the square
    is left out. Together with the input clip (``core.preprocess``) int8 stays within 0.05-0.35 pp of the float
    model on validation (RESULTS.md, "Models that survive the way a device is worn").
    """
    from keras import layers

    mean = layers.BatchNormalization()(layers.GlobalAveragePooling1D()(inp))
    high, low = _extremes(inp)
    extremes = layers.BatchNormalization()(layers.Concatenate()([high, low]))
    return layers.Concatenate()([mean, extremes])


def _cnn_trunk(inp: Any, variant: str) -> Any:
    from keras import layers

    if variant == "v1":
        x = _conv_block(inp, 64, 7)
        x = _conv_block(x, 64, 5)
        x = layers.MaxPooling1D(2)(x)
        x = _conv_block(x, 96, 5)
        x = _conv_block(x, 96, 3)
        x = layers.MaxPooling1D(2)(x)
        x = _conv_block(x, 128, 3)
        return layers.GlobalAveragePooling1D()(x)
    # Halve early and often: each halving of the sequence halves the cost of every later layer
    # (~1.4 M MACs against v1's 7.9 M). The hybrid's stem strides instead of pooling: the same halving
    # for half the stem's MACs and one op less (LiteRT pays per op at this size).
    if variant in ("hybrid", "hybrid2"):
        x = _conv_block(inp, 32, 7, strides=2)
    else:
        x = _conv_block(inp, 32, 7)
        x = layers.MaxPooling1D(2)(x)
    x = _conv_block(x, 48, 5)
    x = layers.MaxPooling1D(2)(x)
    x = _conv_block(x, 64, 5)
    x = layers.MaxPooling1D(2)(x)
    x = _conv_block(x, 96, 3)
    return layers.GlobalAveragePooling1D()(x)


def _cnn_head(inp: Any, variant: str) -> Any:
    """The cnn's features before the classifier: its conv trunk, window statistics for the hybrids, dropout."""
    from keras import layers

    if variant not in CNN_VARIANTS:
        raise ValueError(f"unknown cnn variant {variant!r}; choose one of {', '.join(CNN_VARIANTS)}")
    x = _cnn_trunk(inp, variant)
    if variant == "hybrid":
        x = layers.Concatenate()([x, _window_stats(inp)])
    elif variant == "hybrid2":
        x = layers.Concatenate()([x, _window_stats_int8(inp)])
    return layers.Dropout(0.5 if variant == "v1" else 0.3)(x)


def build_model(
    arch: str,
    n_classes: int,
    window: int,
    channels: int,
    *,
    batch_size: int | None = None,
    unroll: bool = False,
    variant: str | None = None,
) -> Any:
    """Build an uncompiled Keras model.

    ``batch_size=1`` gives the fixed-shape twin the TFLite converter needs for fused LSTM ops
    (Keras 3 with a dynamic batch fails with 'TensorListReserve ... element_shape to be static');
    ``unroll`` unrolls recurrent layers so full-int8 conversion sees plain FULLY_CONNECTED ops.
    ``variant`` picks a cnn variant (``CNN_VARIANTS``; default ``DEFAULT_CNN_VARIANT``).
    """
    import keras
    from keras import layers

    if arch not in ARCHS or arch == "knn":
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(a for a in ARCHS if a != 'knn')} "
                         "(knn: hartool.train.knn.build_knn_model)")
    if arch == "features":  # input: the feature vector of hartool.core.features (``channels`` = its length)
        from .features_model import build_features_mlp

        return build_features_mlp(channels, n_classes, batch_size)
    inp = keras.Input(shape=(window, channels), batch_size=batch_size, name="imu")

    if arch == "cnn":
        x = _cnn_head(inp, variant or DEFAULT_CNN_VARIANT)
    elif arch == "lstm":
        x = layers.LSTM(64, return_sequences=True, unroll=unroll)(inp)
        x = layers.LSTM(64, return_sequences=True, unroll=unroll)(x)
        # Averaging the hidden states over the window, rather than keeping only the last one, lets every
        # time step vote: steadier on 128-step windows of periodic motion.
        x = layers.GlobalAveragePooling1D()(x)
        # The same window statistics as the hybrid CNN: gravity's mean direction is what tells the
        # postures apart, and an averaged LSTM state carries it only blurred.
        x = layers.Concatenate()([x, _window_stats(inp)])
        x = layers.Dropout(0.3)(x)
    elif arch == "cnn-lstm":
        x = _conv_block(inp, 64, 5)
        x = layers.MaxPooling1D(2)(x)
        x = _conv_block(x, 64, 5)
        x = layers.MaxPooling1D(2)(x)
        x = layers.LSTM(64, unroll=unroll)(x)
        x = layers.Dropout(0.3)(x)
    else:  # bilstm
        x = layers.Bidirectional(layers.LSTM(64, return_sequences=True, unroll=unroll))(inp)
        x = layers.Bidirectional(layers.LSTM(64, unroll=unroll))(x)
        x = layers.Dropout(0.3)(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=arch.replace("-", "_"))


def _fix_config(node: Any, unroll: bool) -> None:
    """Walk a Keras config in place: batch 1 on every input layer, ``unroll`` on every recurrent layer."""
    if isinstance(node, list):
        for item in node:
            _fix_config(item, unroll)
        return
    if not isinstance(node, dict):
        return
    cls, cfg = node.get("class_name"), node.get("config")
    if isinstance(cfg, dict):
        if cls == "InputLayer" and cfg.get("batch_shape"):
            cfg["batch_shape"] = [1, *cfg["batch_shape"][1:]]
        if cls in ("LSTM", "GRU", "SimpleRNN") and unroll:
            cfg["unroll"] = True
    for value in node.values():
        _fix_config(value, unroll)


def fixed_batch_twin(model: Any, arch: str, *, unroll: bool = False) -> Any:
    """Same weights, batch fixed to 1 (and optionally unrolled), for TFLite/ONNX export.

    The twin is rebuilt from the model's own config, not from ``arch``: bundles trained with an older
    variant of an architecture still export after the default changes.
    """
    import keras

    config = copy.deepcopy(model.get_config())
    _fix_config(config, unroll)
    twin = keras.Model.from_config(config)
    twin.set_weights(model.get_weights())
    return twin
