"""`--arch knn`: a nearest-neighbour template classifier written as an ordinary Keras model.

For a standardised, flattened window x and a template t, ``argmin ||x - t||^2 = argmax (2 x.t - ||t||^2)``
(``||x||^2`` is the same for every template). So one Dense layer with kernel ``2 T^T`` and bias ``-||t||^2``
scores every template, a max over each class's templates gives ``||x||^2 - d_c^2`` (d_c: the distance to the
nearest template of class c), and a softmax of those over a temperature ``tau`` gives probabilities whose argmax
is the 1-NN label. Nothing is trained: the weights are the training windows. Every op is a plain builtin
(FULLY_CONNECTED, RESHAPE, REDUCE_MAX, MEAN, CONCATENATION, SOFTMAX), so the bundle exports, quantizes, streams
and enrolls new activities like any other.

Templates are the training and validation windows (a template method wastes no example; the validation score
in the manifest is of the training templates alone, measured before the validation windows join). ``tau`` is
chosen on those windows only: leave-one-subject-out nearest neighbours, the ``tau`` of least log-loss.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import DataError
from ..core.metrics import classification_report

# Template units (classes x the largest class's count) and template values (units x window x channels): the
# int8 model is about one byte per value, so 2**20 keeps it near 1 MB (fp32 4 MB). HAPT's 768-value windows
# fit 1,365 units: 227 per class of 6.
MAX_TEMPLATES = 2000
MAX_TEMPLATE_VALUES = 1 << 20
# Temperatures tried, as multiples of the median squared distance to the nearest other-subject template.
TAU_FACTORS = 2.0 ** np.arange(-10, 7)
DENSE_LAYER = "templates"


@dataclass
class KnnFit:
    """The template model and what choosing it measured (for the manifest)."""

    model: Any
    val_metrics: dict[str, Any]
    section: dict[str, Any]
    train_time_s: float


def per_class_cap(n_classes: int, values_per_window: int) -> int:
    """Templates kept per class so that classes x cap fits both budgets."""
    units = min(MAX_TEMPLATES, MAX_TEMPLATE_VALUES // max(1, values_per_window))
    return max(1, units // max(1, n_classes))


def select_templates(y: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Indices of at most ``cap`` windows per class: every window when they fit, else a seeded random subset.

    A subset rather than k-means prototypes: the mean of several recordings of a movement that are not aligned
    in time is a blurred movement that none of them is (the reason template methods average with DTW, not
    pointwise), and a subset keeps the model an exact 1-NN over real windows.
    """
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep.append(np.sort(rng.choice(idx, cap, replace=False)) if len(idx) > cap else idx)
    return np.concatenate(keep) if keep else np.empty(0, dtype=np.int64)


def class_scores(x: np.ndarray, t: np.ndarray, ty: np.ndarray, n_classes: int,
                 exclude: np.ndarray | None = None) -> np.ndarray:
    """(n, classes): per class, the max of ``2 x.t - ||t||^2`` over its templates (-inf without one).

    ``exclude`` (n, templates) masks templates a row may not use (leave-one-subject-out).
    """
    s = 2.0 * (x @ t.T) - (t * t).sum(1)[None, :]
    if exclude is not None:
        s = np.where(exclude, -np.inf, s)
    out = np.full((len(x), n_classes), -np.inf)
    for c in range(n_classes):
        if np.any(ty == c):
            out[:, c] = s[:, ty == c].max(1)
    return out


def choose_tau(t: np.ndarray, ty: np.ndarray, subject: np.ndarray, n_classes: int) -> dict[str, Any]:
    """The temperature of least leave-one-subject-out log-loss on the templates themselves.

    Each template is classified by the templates of the other subjects (by every other template when there is
    one subject only: windows that overlap it then flatter the estimate, which only sets ``tau``).
    """
    t64 = t.astype(np.float64)
    exclude = subject[:, None] == subject[None, :]
    if exclude.all():
        exclude = np.eye(len(t), dtype=bool)
    s = class_scores(t64, t64, ty, n_classes, exclude)
    rows = np.isfinite(s[np.arange(len(ty)), ty])
    s, y = s[rows], ty[rows]
    if not len(y):
        return {"tau": 1.0, "loo_accuracy": None, "loo_log_loss": None, "windows": 0}
    s = np.where(np.isfinite(s), s, -1e30)
    top = s.max(1, keepdims=True)
    nearest = (t64[rows] ** 2).sum(1) - top[:, 0]  # squared distance to the nearest allowed template
    scale = float(np.median(nearest)) or 1.0
    losses = []
    for tau in scale * TAU_FACTORS:
        z = (s - top) / tau
        losses.append(float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y])))
    best = int(np.argmin(losses))
    return {"tau": float(scale * TAU_FACTORS[best]), "loo_accuracy": float(np.mean(s.argmax(1) == y)),
            "loo_log_loss": losses[best], "windows": int(len(y))}


def build_knn_model(t: np.ndarray, ty: np.ndarray, n_classes: int, window: int, channels: int, tau: float) -> Any:
    """The template classifier: input ``imu`` (window, channels), output ``probs`` (classes), embedding 2 x classes.

    Unit ``j * classes + c`` holds class c's j-th template, so a reshape to (k_max, classes) and a max over the
    first axis is the per-class max. A class with fewer than k_max templates repeats its own (a copy never
    changes a max, and adds no extreme value to the int8 range as a "never wins" bias would).
    """
    import keras
    from keras import layers

    k_max = int(np.bincount(ty, minlength=n_classes).max())
    order = np.empty((k_max, n_classes), dtype=np.int64)
    for c in range(n_classes):
        idx = np.flatnonzero(ty == c)
        if not len(idx):
            raise ValueError(f"class {c} has no template")
        order[:, c] = np.resize(idx, k_max)
    units = t[order.ravel()].astype(np.float32)
    inp = keras.Input(shape=(window, channels), name="imu")
    x = layers.Flatten()(inp)
    dense = layers.Dense(len(units), name=DENSE_LAYER)
    x = dense(x)
    dense.set_weights([2.0 * units.T, -(units.astype(np.float64) ** 2).sum(1).astype(np.float32)])
    x = layers.Reshape((k_max, n_classes))(x)
    # The embedding that enrollment fits its heads on (train/embedding.py takes the input of ``probs``): per class
    # the nearest template's score and the mean over its units. A new activity shows as "near none of them".
    emb = layers.Concatenate()([layers.GlobalMaxPooling1D()(x), layers.GlobalAveragePooling1D()(x)])
    probs = layers.Dense(n_classes, activation="softmax", name="probs")
    out = probs(emb)
    # logits = nearest score / tau: the mean half of the embedding does not vote.
    probs.set_weights([np.vstack([np.eye(n_classes) / tau, np.zeros((n_classes, n_classes))]).astype(np.float32),
                       np.zeros(n_classes, np.float32)])
    return keras.Model(inp, out, name="knn")


def fit_knn(x_train: np.ndarray, train: Any, x_val: np.ndarray, val: Any, n_classes: int, seed: int) -> KnnFit:
    """Templates from the preprocessed training and validation windows, ``tau`` from them alone, the model."""
    started = time.perf_counter()
    window, channels = x_train.shape[1:]
    cap = per_class_cap(n_classes, window * channels)
    flat = np.concatenate([x_train, x_val]).reshape(len(x_train) + len(x_val), -1).astype(np.float32)
    y = np.concatenate([train.y, val.y])
    subject = np.concatenate([train.subject, val.subject])
    is_val = np.arange(len(y)) >= len(train.y)
    missing = [train.labels[c] for c in range(n_classes) if not np.any(y == c)]
    if missing:
        raise DataError(f"--arch knn: no training or validation window of {', '.join(missing)} to use as a template")
    keep = select_templates(y, cap, seed)
    t, ty, ts = flat[keep], y[keep], subject[keep]
    tau = choose_tau(t, ty, ts, n_classes)
    # The validation score: the training templates alone (validation windows are not yet templates).
    trained = ~is_val[keep]
    val_pred = class_scores(flat[is_val], t[trained], ty[trained], n_classes).argmax(1)
    val_metrics = classification_report(val.y, val_pred, list(train.labels))
    model = build_knn_model(t, ty, n_classes, int(window), int(channels), tau["tau"])
    counts = np.bincount(ty, minlength=n_classes)
    section = {"templates": int(len(ty)), "units": int(counts.max() * n_classes), "per_class_cap": cap,
               "per_class": [int(c) for c in counts], "windows_available": int(len(y)),
               "subset": "every window" if len(keep) == len(y) else f"seeded random {cap} per class",
               "from": "training and validation windows", "tau_rule": "least leave-one-subject-out log-loss",
               **tau}
    return KnnFit(model, val_metrics, section, time.perf_counter() - started)
