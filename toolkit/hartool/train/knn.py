"""`--arch knn`: a nearest-neighbour template classifier written as an ordinary Keras model.

Two distances, the second chosen only when the training templates show it classifies them better:

* Euclidean. For a standardised, flattened window x and a template t, ``argmin ||x - t||^2 = argmax (2 x.t - ||t||^2)``
(``||x||^2`` is the same for every template). So one Dense layer with kernel ``2 T^T`` and bias ``-||t||^2``
scores every template, a max over each class's templates gives ``||x||^2 - d_c^2`` (d_c: the distance to the
nearest template of class c), and a softmax of those over a temperature ``tau`` gives probabilities whose argmax
is the 1-NN label. Nothing is trained: the weights are the training windows. Every op is a plain builtin
(FULLY_CONNECTED, RESHAPE, REDUCE_MAX, MEAN, CONCATENATION, SOFTMAX), so the bundle exports, quantizes, streams
and enrolls new activities like any other.
* Warping-tolerant: the symmetric LB_Keogh bound of DTW in a Sakoe-Chiba band of ``r`` samples (Keogh 2002):
  with ``U``, ``L`` the running max and min of a series over ``+-r`` samples,
  ``LB(x, t) = sum relu(x - U_t)^2 + relu(L_t - x)^2`` and the distance is ``max(LB(x, t), LB(t, x))``. A
  movement that starts or peaks a little late still lies inside the template's envelope, which is what 1-NN
  DTW, the textbook baseline for a handful of gestures, gets from warping. Unlike DTW it needs no dynamic
  programme: the template envelopes are constants and the window's envelope is a stride-1 max pool, so the
  graph is still plain builtins (MAX_POOL_2D, SUB, RELU, MUL, FULLY_CONNECTED, MAXIMUM). ``r = 0`` is the
  Euclidean distance.

Templates are the training and validation windows (a template method wastes no example; the validation score
in the manifest is of the training templates alone, measured before the validation windows join). The band and
``tau`` are chosen on those windows only, by leave-one-subject-out nearest neighbours: the band of the best
accuracy (the narrowest of equals: ``r = 0`` is the cheaper model), then the ``tau`` of least log-loss. This is
how the UCR archive's "DTW, learned window" baseline chooses its band.
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
# Warping bands tried, as fractions of the window (the UCR archive's learned DTW windows are mostly under 10 %).
BAND_FRACTIONS = (0.0, 0.01, 0.025, 0.05, 0.1)
# The band search costs templates^2 x values per band (both directions of the bound): above this it keeps the
# Euclidean distance, which is also where warping matters least (thousands of windows cover the variations).
BAND_SEARCH_VALUES = 1 << 28
# Elements of one (queries x templates x values) block of the bound: bounds the search's memory to ~64 MB.
_BLOCK_VALUES = 1 << 23


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


def envelope(x: np.ndarray, band: int) -> tuple[np.ndarray, np.ndarray]:
    """The running max and min of (n, window, channels) series over ``+-band`` samples (edges: what exists)."""
    pad = [(0, 0), (band, band), (0, 0)]
    hi = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad, constant_values=-np.inf), 2 * band + 1, axis=1)
    lo = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad, constant_values=np.inf), 2 * band + 1, axis=1)
    return hi.max(-1), lo.min(-1)


def _lower_bound(q: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """(queries, templates): ``sum relu(q - U)^2 + relu(L - q)^2`` over the flattened values, in blocks."""
    out = np.empty((len(q), len(upper)))
    step = max(1, _BLOCK_VALUES // max(1, upper.size))
    for i in range(0, len(q), step):
        d = q[i:i + step, None, :]
        out[i:i + step] = (np.maximum(d - upper, 0) ** 2 + np.maximum(lower - d, 0) ** 2).sum(-1)
    return out


def band_distances(x: np.ndarray, t: np.ndarray, band: int) -> np.ndarray:
    """(n, templates): the symmetric LB_Keogh bound in ``band`` of (n, window, channels) windows to templates."""
    xf, tf = x.reshape(len(x), -1), t.reshape(len(t), -1)
    tu, tl = (e.reshape(len(t), -1) for e in envelope(t, band))
    xu, xl = (e.reshape(len(x), -1) for e in envelope(x, band))
    return np.maximum(_lower_bound(xf, tu, tl), _lower_bound(tf, xu, xl).T)


def class_scores(x: np.ndarray, t: np.ndarray, ty: np.ndarray, n_classes: int,
                 exclude: np.ndarray | None = None, band: int = 0) -> np.ndarray:
    """(n, classes): per class, ``||x||^2`` less the least distance to one of its templates (-inf without one).

    ``x`` and ``t`` are (n, window, channels); at ``band`` 0 the distance is Euclidean, computed as the model
    does, ``2 x.t - ||t||^2``. ``exclude`` (n, templates) masks templates a row may not use (leave-one-subject-out).
    """
    xf, tf = x.reshape(len(x), -1), t.reshape(len(t), -1)
    if band == 0:
        s = 2.0 * (xf @ tf.T) - (tf * tf).sum(1)[None, :]
    else:
        s = (xf * xf).sum(1)[:, None] - band_distances(x, t, band)
    if exclude is not None:
        s = np.where(exclude, -np.inf, s)
    out = np.full((len(x), n_classes), -np.inf)
    for c in range(n_classes):
        if np.any(ty == c):
            out[:, c] = s[:, ty == c].max(1)
    return out


def candidate_bands(n_templates: int, window: int, channels: int) -> tuple[int, ...]:
    """The warping bands (samples) the search tries: :data:`BAND_FRACTIONS` of the window, or 0 alone when
    the search would cost more than :data:`BAND_SEARCH_VALUES`."""
    if n_templates * n_templates * window * channels > BAND_SEARCH_VALUES:
        return (0,)
    return tuple(sorted({int(round(f * window)) for f in BAND_FRACTIONS}))


def choose_band(t: np.ndarray, ty: np.ndarray, subject: np.ndarray, n_classes: int) -> dict[str, Any]:
    """The band and ``tau`` of the templates' own leave-one-subject-out nearest neighbours.

    Each template is classified by the templates of the other subjects (by every other template when there is
    one subject only: windows that overlap it then flatter the estimate, which only ranks bands and sets ``tau``).
    The band of the best accuracy wins, the narrowest of equals; then ``tau`` of least log-loss in that band.
    """
    t64 = t.astype(np.float64)
    exclude = subject[:, None] == subject[None, :]
    if exclude.all():
        exclude = np.eye(len(t), dtype=bool)
    # The rows that can be scored: a template of their own class from another subject exists (whatever the band).
    rows = (~exclude & (ty[:, None] == ty[None, :])).any(1)
    y = ty[rows]
    table, best = {}, None
    for band in candidate_bands(len(t), *t.shape[1:]):
        s = class_scores(t64, t64, ty, n_classes, exclude, band)[rows]
        acc = float(np.mean(s.argmax(1) == y)) if len(y) else 0.0
        table[str(band)] = round(acc, 4)
        if best is None or acc > best[1]:
            best = (band, acc, s)
    band, _, s = best
    sq_norms = (t64[rows].reshape(len(y), -1) ** 2).sum(1)
    return {"band": band, "band_loo_accuracy": table, **choose_tau(s, y, sq_norms)}


def choose_tau(s: np.ndarray, y: np.ndarray, sq_norms: np.ndarray) -> dict[str, Any]:
    """The temperature of least log-loss of leave-one-out class scores ``s`` (rows whose own class has one)."""
    if not len(y):
        return {"tau": 1.0, "loo_accuracy": None, "loo_log_loss": None, "windows": 0}
    s = np.where(np.isfinite(s), s, -1e30)
    top = s.max(1, keepdims=True)
    nearest = np.maximum(sq_norms - top[:, 0], 0.0)  # squared distance to the nearest allowed template
    # Templates that repeat exactly (a distance of 0, or -1e-9 by rounding) give no scale: any tau ranks alike.
    scale = float(np.median(nearest)) or 1.0
    losses = []
    for tau in scale * TAU_FACTORS:
        z = (s - top) / tau
        losses.append(float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y])))
    best = int(np.argmin(losses))
    return {"tau": float(scale * TAU_FACTORS[best]), "loo_accuracy": float(np.mean(s.argmax(1) == y)),
            "loo_log_loss": losses[best], "windows": int(len(y))}


def build_knn_model(t: np.ndarray, ty: np.ndarray, n_classes: int, tau: float, band: int = 0) -> Any:
    """The template classifier: input ``imu`` (window, channels), output ``probs`` (classes), embedding 2 x classes.

    ``t`` is (templates, window, channels). Unit ``j * classes + c`` holds class c's j-th template, so a reshape to
    (k_max, classes) and a max over the first axis is the per-class max. A class with fewer than k_max templates
    repeats its own (a copy never changes a max, and adds no extreme value to the int8 range as a "never wins"
    bias would).
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
    inp = keras.Input(shape=units.shape[1:], name="imu")
    x = _euclidean_scores(inp, units) if band == 0 else _band_scores(inp, units, band)
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


def _euclidean_scores(inp: Any, units: np.ndarray) -> Any:
    """Per unit ``2 x.t - ||t||^2`` (``||x||^2`` less the squared distance): one Dense layer."""
    from keras import layers

    flat = units.reshape(len(units), -1)
    dense = layers.Dense(len(units), name=DENSE_LAYER)
    x = dense(layers.Flatten()(inp))
    dense.set_weights([2.0 * flat.T, -(flat.astype(np.float64) ** 2).sum(1).astype(np.float32)])
    return x


def _band_scores(inp: Any, units: np.ndarray, band: int) -> Any:
    """Per unit minus the symmetric LB_Keogh bound: ``-max(LB(x, t), LB(t, x))``, from stock layers only."""
    from keras import layers

    n = len(units)
    flat = units.reshape(n, -1)
    upper, lower = (e.reshape(n, -1) for e in envelope(units, band))

    def neg(v: Any) -> Any:
        return layers.Rescaling(-1.0)(v)

    def tile(v: Any) -> Any:  # (window, channels) -> (units x values): one copy of the window per unit
        return layers.Flatten()(layers.RepeatVector(n)(layers.Flatten()(v)))

    def pool(v: Any) -> Any:
        return layers.MaxPooling1D(2 * band + 1, strides=1, padding="same")(v)

    def sum_squares(v: Any, name: str) -> Any:  # (units x values) -> (units, 1): per unit, the sum of squares
        v = layers.Reshape((n, flat.shape[1]))(layers.Multiply()([v, v]))
        return layers.Dense(1, use_bias=False, kernel_initializer="ones", trainable=False, name=name)(v)

    x = tile(inp)
    # LB(x, t): how far the window leaves each template's envelope.
    window_out = layers.Add()([layers.ReLU()(_minus(x, upper, "upper")), layers.ReLU()(neg(_minus(x, lower, "lower")))])
    # LB(t, x): how far each template leaves the window's envelope (the window's running max and min).
    x_up, x_low = tile(pool(inp)), tile(neg(pool(neg(inp))))
    template_out = layers.Add()([layers.ReLU()(neg(_minus(x_up, flat, "templates_up"))),
                                 layers.ReLU()(_minus(x_low, flat, "templates_low"))])
    d = layers.Maximum()([sum_squares(window_out, "lb_window"), sum_squares(template_out, "lb_templates")])
    return neg(layers.Flatten()(d))


def _minus(v: Any, const: np.ndarray, name: str) -> Any:
    """``v - const`` elementwise over a flat tensor, as a stock layer whose constant is saved with the weights.

    An inference-mode BatchNormalization with unit variance and no scale is exactly a subtraction; it survives
    ``model.save`` and the export's rebuild from config (a Keras ``Normalization`` layer loses ``set_weights``).
    """
    from keras import layers

    bn = layers.BatchNormalization(epsilon=0.0, scale=False, name=name)
    out = bn(v)
    bn.set_weights([np.zeros(const.size, np.float32), const.ravel().astype(np.float32),
                    np.ones(const.size, np.float32)])
    return out


def fit_knn(x_train: np.ndarray, train: Any, x_val: np.ndarray, val: Any, n_classes: int, seed: int) -> KnnFit:
    """Templates from the preprocessed training and validation windows, band and ``tau`` from them alone, the
    model."""
    started = time.perf_counter()
    window, channels = x_train.shape[1:]
    cap = per_class_cap(n_classes, window * channels)
    windows = np.concatenate([x_train, x_val]).astype(np.float32)
    y = np.concatenate([train.y, val.y])
    subject = np.concatenate([train.subject, val.subject])
    is_val = np.arange(len(y)) >= len(train.y)
    missing = [train.labels[c] for c in range(n_classes) if not np.any(y == c)]
    if missing:
        raise DataError(f"--arch knn: no training or validation window of {', '.join(missing)} to use as a template")
    keep = select_templates(y, cap, seed)
    t, ty, ts = windows[keep], y[keep], subject[keep]
    chosen = choose_band(t, ty, ts, n_classes)
    # The validation score: the training templates alone (validation windows are not yet templates).
    trained = ~is_val[keep]
    val_pred = class_scores(windows[is_val], t[trained], ty[trained], n_classes, band=chosen["band"]).argmax(1)
    val_metrics = classification_report(val.y, val_pred, list(train.labels))
    model = build_knn_model(t, ty, n_classes, chosen["tau"], chosen["band"])
    counts = np.bincount(ty, minlength=n_classes)
    section = {"templates": int(len(ty)), "units": int(counts.max() * n_classes), "per_class_cap": cap,
               "per_class": [int(c) for c in counts], "windows_available": int(len(y)),
               "subset": "every window" if len(keep) == len(y) else f"seeded random {cap} per class",
               "from": "training and validation windows",
               "distance": "Euclidean" if chosen["band"] == 0 else f"symmetric LB_Keogh, band {chosen['band']} samples",
               "band_rule": "best leave-one-subject-out accuracy, narrowest of equals",
               "tau_rule": "least leave-one-subject-out log-loss", **chosen}
    return KnnFit(model, val_metrics, section, time.perf_counter() - started)
