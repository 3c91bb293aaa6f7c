"""`--arch features`: a small MLP over the statistical/spectral window features of hartool.core.features."""

from __future__ import annotations

from typing import Any


def build_features_mlp(n_features: int, n_classes: int, batch_size: int | None = None) -> Any:
    """Two ReLU layers on the standardised feature vector; every op has an int8 kernel (FULLY_CONNECTED)."""
    import keras
    from keras import layers

    inp = keras.Input(shape=(n_features,), batch_size=batch_size, name="features")
    x = layers.Dense(128, activation="relu")(inp)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="features_mlp")
