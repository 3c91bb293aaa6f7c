"""Keras architectures: cnn (int8-friendly CNN-only), lstm, cnn-lstm and bilstm, all from one builder."""

from __future__ import annotations

from typing import Any

ARCHS = ("cnn", "lstm", "cnn-lstm", "bilstm")


def build_model(
    arch: str,
    n_classes: int,
    window: int,
    channels: int,
    *,
    batch_size: int | None = None,
    unroll: bool = False,
) -> Any:
    """Build an uncompiled Keras model.

    ``batch_size=1`` gives the fixed-shape twin the TFLite converter needs for fused LSTM ops
    (Keras 3 with a dynamic batch fails with 'TensorListReserve ... element_shape to be static');
    ``unroll`` unrolls recurrent layers so full-int8 conversion sees plain FULLY_CONNECTED ops.
    """
    import keras
    from keras import layers

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    inp = keras.Input(shape=(window, channels), batch_size=batch_size, name="imu")

    def conv_block(x: Any, filters: int, kernel: int) -> Any:
        # Conv1D + BN + ReLU fold into one int8 CONV_2D at conversion; no op here lacks an int8 kernel.
        x = layers.Conv1D(filters, kernel, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x)

    if arch == "cnn":
        x = conv_block(inp, 64, 7)
        x = conv_block(x, 64, 5)
        x = layers.MaxPooling1D(2)(x)
        x = conv_block(x, 96, 5)
        x = conv_block(x, 96, 3)
        x = layers.MaxPooling1D(2)(x)
        x = conv_block(x, 128, 3)
        x = layers.GlobalAveragePooling1D()(x)
        x = layers.Dropout(0.5)(x)
    elif arch == "lstm":
        x = layers.LSTM(64, return_sequences=True, unroll=unroll)(inp)
        x = layers.LSTM(64, return_sequences=True, unroll=unroll)(x)
        # Averaging the hidden states over the window, rather than keeping only the last one, lets every
        # time step vote: steadier on 128-step windows of periodic motion.
        x = layers.GlobalAveragePooling1D()(x)
        x = layers.Dropout(0.3)(x)
    elif arch == "cnn-lstm":
        x = conv_block(inp, 64, 5)
        x = layers.MaxPooling1D(2)(x)
        x = conv_block(x, 64, 5)
        x = layers.MaxPooling1D(2)(x)
        x = layers.LSTM(64, unroll=unroll)(x)
        x = layers.Dropout(0.3)(x)
    else:  # bilstm
        x = layers.Bidirectional(layers.LSTM(64, return_sequences=True, unroll=unroll))(inp)
        x = layers.Bidirectional(layers.LSTM(64, unroll=unroll))(x)
        x = layers.Dropout(0.3)(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=arch.replace("-", "_"))


def fixed_batch_twin(model: Any, arch: str, *, unroll: bool = False) -> Any:
    """Same weights, batch fixed to 1 (and optionally unrolled), for TFLite/ONNX export."""
    _, window, channels = model.input_shape
    n_classes = model.output_shape[-1]
    twin = build_model(arch, n_classes, window, channels, batch_size=1, unroll=unroll)
    twin.set_weights(model.get_weights())
    return twin
