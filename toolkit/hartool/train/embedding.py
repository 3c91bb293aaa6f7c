"""The network's embedding as a second model output, so the device can enroll new activities without TensorFlow.

The embedding is the input of the last layer (the ``probs`` softmax Dense): the pooled features the
classifier itself separates activities with. Export adds it as a second output of every TFLite/ONNX
artifact: it is computed anyway, so reading it costs one extra output tensor (no measurable latency,
see benchmarks/RESULTS.md), and the plain ``predict`` path never reads it.
"""

from __future__ import annotations

from typing import Any

# Name of the classifier's last layer in every architecture of train/models.py.
PROBS_LAYER = "probs"


def embedding_tensor(model: Any) -> Any | None:
    """The Keras tensor feeding the ``probs`` layer, or None when the model has no such layer."""
    try:
        layer = model.get_layer(PROBS_LAYER)
    except ValueError:
        return None
    return layer.input


def with_embedding(model: Any) -> tuple[Any, int | None]:
    """(a model with outputs [probs, embedding], the embedding size), or (``model``, None) when it cannot have one.

    An embedding exactly as wide as the label list is left out: the runtime tells the two outputs apart
    by width (the converters reorder outputs).
    """
    import keras

    emb = embedding_tensor(model)
    if emb is None or len(emb.shape) != 2:
        return model, None
    dim = int(emb.shape[-1])
    if dim == int(model.output_shape[-1]):
        return model, None
    dual = keras.Model(model.input, [model.output, emb], name=f"{model.name}_with_embedding")
    return dual, dim
