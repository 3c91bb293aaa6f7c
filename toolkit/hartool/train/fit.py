"""Fit a classifier on a dataset's subject split, evaluate on the test subjects, and write the bundle."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..core.bundle import FORMAT_VERSION, MANIFEST, Bundle, file_entry
from ..core.errors import DataError, HartoolError
from ..core.metrics import classification_report
from ..core.orientation import manifest_section as orientation_section
from ..core.orientation import reads_imu
from ..core.preprocess import fit_preprocessing, preprocess
from .augment import augmented_batches, one_hot
from .models import ARCHS
from .tflog import reproducible_tf_env

# Defaults that reach the accuracy targets on 2 CPU cores within the time budget (see benchmarks/RESULTS.md).
# cnn: 30 epochs (early stopping usually ends it near 20) beat 12 on validation, 93.6 vs 91.7 % (RESULTS.md).
# knn trains nothing: its weights are the training windows (train/knn.py).
DEFAULT_EPOCHS = {"cnn": 30, "lstm": 25, "cnn-lstm": 30, "bilstm": 15, "features": 30, "knn": 0}
# Weight averaging starts from the random initial weights: below this many steps it keeps too much of them.
EMA_MIN_STEPS = 3000
# Yaw augmentation of a fixed-orientation model needs a dominant upright posture to turn about (HAPT: 76 % of
# the training windows lie within 30 degrees of it); below this share it is skipped.
UPRIGHT_MIN_SHARE = 0.6
# Hop between training windows as a share of the window (HAPT: 16 and 32 of 128 samples): denser for the cheap
# convolutional models, sparser for recurrent ones (an LSTM step per sample is what costs time on a CPU).
# knn: dense too, as templates shifted in time are what lets a nearest neighbour match a movement that starts late.
DEFAULT_TRAIN_STRIDE_SHARE = {"cnn": 1 / 8, "lstm": 1 / 4, "cnn-lstm": 1 / 8, "bilstm": 1 / 4, "features": 1 / 8,
                              "knn": 1 / 8}
# Placement-free augmentation (no upright trunk to turn about: a wrist, an ankle, a hand-held device): a random
# 3-D tilt of up to this many degrees, as a strap or a grip sits a little differently on every wearer. With 15 a
# small model lost an activity whose gravity lay 13 degrees from another's (RESULTS.md "Many datasets").
PLACEMENT_FREE_TILT_DEG = 5.0
# Small-data recipe: enough optimiser steps to learn from a few hundred windows (30 epochs of 5 batches are 150
# steps), in smaller batches; capped so a tiny set does not train for ever.
SMALL_DATA_MIN_STEPS = 1500
SMALL_DATA_MAX_EPOCHS = 200
SMALL_DATA_BATCH = 32
# Label smoothing, per-sensor gain jitter (sd), yaw turns and the input clip by arch; archs not listed train
# without them. aug_yaw_deg: a random turn of each training window about the upright axis, up to this many
# degrees either way. People clip a phone to the belt, or strap a board, turned differently about the vertical;
# the postures differ by a tilt whose direction in the device frame turns with it (+3.3 pp on validation, mean
# of two splits; RESULTS.md "Models that survive the way a device is worn"). input_clip: see fit_preprocessing.
RECIPE_DEFAULTS = {
    "cnn": {"label_smoothing": 0.1, "aug_scale": 0.1, "aug_yaw_deg": 180.0, "input_clip": 4.0},
    "lstm": {"label_smoothing": 0.1, "aug_scale": 0.1, "aug_yaw_deg": 180.0},
}


@dataclass
class TrainOptions:
    """Everything `hartool train` takes; the same object drives the Python API and the demo."""

    arch: str = "cnn"
    dataset: str = "hapt"
    out: Path = Path("bundle")
    epochs: int | None = None
    seed: int = 0
    batch_size: int = 64
    learning_rate: float = 2e-3
    # Seconds ("2.56s") or samples (128, "128"); None: 2.56 s / 1.28 s at the dataset's rate (HAPT: 128 / 64).
    window: int | str | None = None
    stride: int | str | None = None
    # Training windows are cut denser than evaluation windows (a free shift augmentation);
    # validation and test always use `stride`, so reported numbers match the UCI HAR protocol.
    train_stride: int | None = None
    val_fraction: float = 0.15
    include_transitions: bool = False
    # Split and class plumbing (hartool.data.splits): subject names/numbers as written in the data;
    # None = the default (UCI test people for hapt/uci-har, a seeded choice for csv:DIR); () = no test subject.
    test_subjects: tuple[str, ...] | None = None
    val_subjects: tuple[str, ...] | None = None
    # Activity names to train on, in class order (None: the dataset's default activities).
    labels: tuple[str, ...] | None = None
    # Subjects left out of every split (``--arch auto`` cross-validates on the training subjects only).
    exclude_subjects: tuple[str, ...] = ()
    class_weights: bool = False
    tensorboard: Path | None = None
    # Early stopping (epochs without a better validation accuracy); None runs every epoch. Off by default: judged
    # on 3 validation subjects it cut the cosine schedule at about half its length, so the "last" weights below
    # were never annealed (RESULTS.md "Models that survive the way a device is worn").
    patience: int | None = None
    # "last": weights at the end of the cosine schedule; "best-val": the best validation checkpoint.
    # With 3 validation subjects, validation accuracy tracks test accuracy poorly (see RESULTS.md), so the
    # annealed final weights are the default; the best-val checkpoint is kept in the bundle either way.
    select: str = "last"
    weight_decay: float = 1e-3
    # Recipe (see benchmarks/RESULTS.md "Models"): cnn variant (None: models.DEFAULT_CNN_VARIANT), label
    # smoothing, and raw-window augmentation: per-sensor gain jitter (sd) and a random tilt of up to
    # `aug_tilt_deg` (acc and gyro turned together). orientation "free" calibrates every recording to the
    # reference frame (core/orientation.py) and turns each training window about the vertical at random.
    variant: str | None = None
    # None: the arch's default (RECIPE_DEFAULTS: cnn and lstm; the seed variants keep turn 1's recipe).
    label_smoothing: float | None = None
    aug_scale: float | None = None
    aug_tilt_deg: float | None = None
    # Turn about the upright axis of up to this many degrees either way (None: 180 for free, else the arch's
    # RECIPE_DEFAULTS; 0: none).
    aug_yaw_deg: float | None = None
    # Standardised inputs are clipped to +-this many sd (None: the arch's RECIPE_DEFAULTS; 0: no clip); see
    # core.preprocess.fit_preprocessing for why a full-int8 model needs it.
    input_clip: float | None = None
    # "fixed", "free", or None: free for a cnn on a trunk-worn device's acc + gyro, else fixed
    # (:func:`default_orientation`).
    orientation: str | None = None
    # Caps per split, for tests and smoke runs only.
    max_windows: int | None = None
    verbose: int = 1

    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.arch]

    def resolved_recipe(self, key: str) -> float:
        value = getattr(self, key)
        return float(value) if value is not None else RECIPE_DEFAULTS.get(self.arch, {}).get(key, 0.0)

    def resolved_tilt_deg(self) -> float:
        # A small random tilt blurs the few degrees between sitting and standing of a fixed device (-0.7 pp
        # on validation), but covers calibration error once every recording is calibrated (free).
        if self.aug_tilt_deg is not None:
            return self.aug_tilt_deg
        return 5.0 if self.orientation == "free" else 0.0

    def resolved_yaw_deg(self) -> float:
        if self.aug_yaw_deg is not None:
            return min(float(self.aug_yaw_deg), 180.0)
        return 180.0 if self.orientation == "free" else self.resolved_recipe("aug_yaw_deg")

    def resolved_train_stride(self) -> int:
        if self.train_stride is not None:
            return self.train_stride
        return max(1, int(round(int(self.window or 0) * DEFAULT_TRAIN_STRIDE_SHARE[self.arch])))


def with_lengths(opts: TrainOptions, rate_hz: float) -> TrainOptions:
    """``opts`` with window and stride in samples at ``rate_hz`` (seconds and the defaults resolved)."""
    from ..data.windowing import DEFAULT_STRIDE_S, DEFAULT_WINDOW_S, to_samples

    return dataclasses.replace(opts, window=to_samples(opts.window, rate_hz, DEFAULT_WINDOW_S),
                               stride=to_samples(opts.stride, rate_hz, DEFAULT_STRIDE_S))


@dataclass
class TrainResult:
    """What training returns to the CLI: where the bundle is and what it scored."""

    bundle: Path
    arch: str
    metrics: dict[str, Any]
    train_time_s: float
    epochs_run: int
    n_params: int
    windows: dict[str, int] = field(default_factory=dict)
    # What the run decided for the user (the recipe and why, a better window): the CLI shows these on stderr.
    notes: list[str] = field(default_factory=list)


def load_training_data(opts: TrainOptions, ds: Any = None) -> Any:
    """The dataset's windows split by subject as ``opts`` asks (a :class:`hartool.data.splits.TrainingData`)."""
    from ..data import load_dataset
    from ..data.splits import training_data, without_subjects

    ds = load_dataset(opts.dataset) if ds is None else ds
    opts, _ = resolve_orientation(with_lengths(opts, ds.sample_rate_hz), ds)
    return training_data(
        _oriented(without_subjects(ds, opts.exclude_subjects), opts), window=opts.window, stride=opts.stride,
        train_stride=opts.resolved_train_stride(), labels=opts.labels, include_transitions=opts.include_transitions,
        test=opts.test_subjects, val=opts.val_subjects, val_fraction=opts.val_fraction, seed=opts.seed,
        max_windows=opts.max_windows,
    )


def _oriented(ds: Any, opts: TrainOptions) -> Any:
    """The dataset as the model will see it: each recording calibrated like a stream for ``--orientation free``."""
    if opts.orientation != "free":
        return ds
    from ..core.orientation import calibrated_dataset

    return calibrated_dataset(ds, opts.window, opts.stride)


def _check_train_options(opts: TrainOptions) -> None:
    if opts.arch not in ARCHS:
        raise HartoolError(f"unknown arch {opts.arch!r}; choose one of {', '.join(ARCHS)}")
    if opts.select not in ("last", "best-val"):
        raise HartoolError(f"unknown --select {opts.select!r}; choose last or best-val")
    if opts.orientation not in (None, "fixed", "free"):
        raise HartoolError(f"unknown --orientation {opts.orientation!r}; choose fixed or free")


def _callbacks(opts: TrainOptions, out: Path, ckpt: Path) -> list[Any]:
    import keras

    callbacks: list[Any] = [
        keras.callbacks.ModelCheckpoint(str(ckpt), monitor="val_accuracy", save_best_only=True,
                                        save_weights_only=True),
        keras.callbacks.CSVLogger(str(out / "history.csv")),
    ]
    if opts.patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=opts.patience))
    if opts.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(opts.tensorboard)))
    return callbacks


def _class_weight(opts: TrainOptions, y: np.ndarray, n_classes: int) -> dict[int, float] | None:
    if not opts.class_weights:
        return None
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return {i: float(len(y) / (n_classes * c)) for i, c in enumerate(counts) if c > 0}


def train(opts: TrainOptions) -> TrainResult:
    """Train ``opts.arch`` on ``opts.dataset`` and write a complete bundle to ``opts.out``."""
    from ..data import load_dataset

    _check_train_options(opts)
    full = load_dataset(opts.dataset)
    opts, orientation_why = resolve_orientation(with_lengths(opts, full.sample_rate_hz), full)
    data = load_training_data(opts, full)
    opts, recipe = choose_recipe(opts, data)
    recipe["orientation"] = orientation_why
    if orientation_why != "given":
        recipe["notes"].insert(0, f"orientation {opts.orientation} (default): {orientation_why}")
    ds, evaluation = data.dataset, data.split.train
    train_w, val_w, test_w = data.train, data.val, data.test
    for name, w in (("training", train_w), ("validation", val_w), ("test", test_w)):
        if len(w.y) == 0:
            raise DataError(f"{opts.dataset}: no {name} windows (check subjects, window and stride)")

    # Library callers too (the CLI has set it before TensorFlow loaded): in effect while TensorFlow has not yet
    # started its thread pools, which it does at the first operation.
    tf_env = reproducible_tf_env()
    # Imported here so that nothing outside training pays TensorFlow's start-up cost.
    import keras

    keras.utils.set_random_seed(opts.seed)
    spec = _fit_spec(opts, train_w.x, ds.sample_rate_hz)
    x_val, x_test = (preprocess(w.x, spec) for w in (val_w, test_w))
    n_classes = len(evaluation.labels)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    if opts.arch == "knn":
        model, run, val_metrics = _fit_templates(opts, data, spec, x_val, n_classes)
        scored = {"test": (x_test, test_w.y)}
    else:
        model, run = _fit_network(opts, data, spec, x_val, n_classes, out)
        val_metrics, scored = None, {"val": (x_val, val_w.y), "test": (x_test, test_w.y)}
    metrics = _score_and_save(model, out, scored, evaluation.labels)
    if val_metrics is not None:
        metrics = {"val": val_metrics, **metrics}
    training = {**run, "n_params": int(model.count_params()), "recipe": recipe, "tf_env": tf_env}
    Bundle(out, _manifest(opts, data, spec, x_val.shape, training, metrics)).save()
    _plot_confusion(metrics["test"]["confusion"], evaluation.labels, out / "confusion.png",
                    title=f"{opts.arch} on {ds.name} test subjects")
    return TrainResult(
        bundle=out / MANIFEST, arch=opts.arch, metrics=metrics, train_time_s=run["train_time_s"],
        epochs_run=run["epochs_run"], n_params=training["n_params"],
        windows={"train": len(train_w.y), "val": len(val_w.y), "test": len(test_w.y)}, notes=recipe["notes"],
    )


def _fit_network(opts: TrainOptions, data: Any, spec: dict[str, Any], x_val: np.ndarray, n_classes: int,
                 out: Path) -> tuple[Any, dict[str, Any]]:
    """Build and fit ``opts.arch``; returns the model and what the fit decided and measured."""
    from .models import build_model

    train_w, val_w = data.train, data.val
    model = build_model(opts.arch, n_classes, opts.window, x_val.shape[-1], variant=opts.variant)
    yaw_axis = yaw_axis_of(opts, train_w.x)
    batches = _training_batches(opts, train_w, spec, n_classes, yaw_axis)
    epochs = opts.resolved_epochs()
    _compile(model, opts, steps=len(batches) * epochs)
    ckpt = out / "best_val.weights.h5"
    started = time.perf_counter()
    history = model.fit(
        batches, validation_data=(x_val, one_hot(val_w.y, n_classes)), epochs=epochs,
        callbacks=_callbacks(opts, out, ckpt), class_weight=_class_weight(opts, train_w.y, n_classes),
        verbose=opts.verbose,
    )
    train_time = time.perf_counter() - started
    if opts.select == "best-val" and ckpt.exists():
        model.load_weights(str(ckpt))
    return model, {"epochs": epochs, "yaw_axis": yaw_axis, "epochs_run": len(history.history.get("loss", [])),
                   "train_time_s": round(train_time, 2),
                   "best_val_accuracy": float(max(history.history.get("val_accuracy", [0.0])))}


def _fit_templates(opts: TrainOptions, data: Any, spec: dict[str, Any], x_val: np.ndarray,
                   n_classes: int) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """``--arch knn``: the template model (nothing trained), its run record and its validation metrics."""
    from .knn import fit_knn

    fit = fit_knn(preprocess(data.train.x, spec), data.train, x_val, data.val, n_classes, opts.seed)
    run = {"epochs": 0, "yaw_axis": None, "epochs_run": 0, "train_time_s": round(fit.train_time_s, 2),
           "best_val_accuracy": float(fit.val_metrics["accuracy"]), "knn": fit.section}
    return fit.model, run, fit.val_metrics


def _plot_confusion(confusion: Any, labels: list[str], path: Path, title: str) -> None:
    try:
        from .plots import save_confusion_png

        save_confusion_png(confusion, labels, path, title=title)
    except ImportError:  # matplotlib is in the train extra, but a plot is never worth failing a run
        pass


def _score_and_save(model: Any, out: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]],
                    labels: list[str]) -> dict[str, Any]:
    """Classification reports per split; writes the model and the Keras test probabilities."""
    probs = {name: model.predict(x, batch_size=256, verbose=0) for name, (x, _) in splits.items()}
    metrics = {name: classification_report(y, probs[name].argmax(1), labels) for name, (_, y) in splits.items()}
    # Keras float predictions are kept so quantize can report top-1 agreement without reloading Keras.
    np.save(out / "keras_test_probs.npy", probs["test"].astype(np.float32))
    tmp_model = out / ".model.tmp.keras"
    model.save(str(tmp_model))
    os.replace(tmp_model, out / "model.keras")
    return metrics


def _manifest(opts: TrainOptions, data: Any, spec: dict[str, Any], x_shape: tuple[int, ...],
              run: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """The bundle's manifest after training; ``run`` holds what the fit itself decided and measured."""
    ds, evaluation, out = data.dataset, data.split.train, Path(opts.out)
    yaw_axis = run["yaw_axis"]
    extra = {"knn": run["knn"]} if "knn" in run else {}
    return {
        "format_version": FORMAT_VERSION,
        "hartool_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "arch": opts.arch,
        "labels": list(evaluation.labels),
        "label_ids": [int(i) for i in evaluation.label_ids],
        "channels": ds.channels,
        "sample_rate_hz": float(ds.sample_rate_hz),
        "window": opts.window,
        "stride": opts.stride,
        "input": {"shape": [1, *(int(v) for v in x_shape[1:])], "dtype": "float32"},
        "preprocessing": spec,
        "orientation": {**orientation_section(opts.orientation), "chosen": run["recipe"].get("orientation")},
        "training": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
            "epochs": run["epochs"],
            "train_stride": opts.resolved_train_stride(),
            "variant": _resolved_variant(opts),
            "aug_tilt_deg": opts.resolved_tilt_deg(),
            "aug_yaw_deg": opts.resolved_yaw_deg() if yaw_axis is not None else 0.0,
            "aug_yaw_axis": yaw_axis,
            "label_smoothing": opts.resolved_recipe("label_smoothing"),
            "aug_scale": opts.resolved_recipe("aug_scale"),
            **{k: run[k] for k in ("epochs_run", "train_time_s", "n_params", "best_val_accuracy", "recipe", "tf_env")},
            **extra,
        },
        "dataset": data.manifest_section(opts.max_windows),
        "metrics": metrics,
        "model": {"format": "keras", **file_entry(out / "model.keras", out)},
        "artifacts": [],
    }


def _fit_spec(opts: TrainOptions, x: np.ndarray, rate_hz: float) -> dict[str, Any]:
    """The preprocessing spec: per-channel standardisation, or window features for ``--arch features``."""
    if opts.arch == "features":
        from ..core.features import fit_feature_preprocessing

        # Bands follow the rate and the window up to Nyquist; the spec records them for the device.
        return fit_feature_preprocessing(x, rate_hz)
    clip = opts.resolved_recipe("input_clip")
    return fit_preprocessing(x, clip=clip if clip > 0 else None)


def _resolved_variant(opts: TrainOptions) -> str | None:
    from .models import DEFAULT_CNN_VARIANT

    return (opts.variant or DEFAULT_CNN_VARIANT) if opts.arch == "cnn" else None


def _training_batches(opts: TrainOptions, train_w: Any, spec: dict[str, Any], n_classes: int,
                      yaw_axis: list[float] | None) -> Any:
    """Shuffled, augmented, preprocessed training batches with label-smoothed targets (fresh every epoch)."""
    return augmented_batches(
        train_w.x, train_w.y, spec, n_classes=n_classes, batch_size=opts.batch_size, seed=opts.seed,
        scale=opts.resolved_recipe("aug_scale"), max_tilt_deg=opts.resolved_tilt_deg(),
        yaw_axis=None if yaw_axis is None else np.asarray(yaw_axis), max_yaw_deg=opts.resolved_yaw_deg(),
        smoothing=opts.resolved_recipe("label_smoothing"),
    )


def yaw_axis_of(opts: TrainOptions, x_raw: np.ndarray) -> list[float] | None:
    """The axis training windows turn about: the calibrated frame's vertical (free), the training windows'
    own upright direction (fixed), or None when the recipe turns nothing, the channels are not acc + gyro, or
    (fixed) no upright trunk is evident (:func:`trunk_axis`): no posture to turn about."""
    if opts.resolved_yaw_deg() <= 0 or x_raw.shape[-1] != 6:
        return None
    if opts.orientation == "free":
        from ..core.orientation import REFERENCE_GRAVITY

        return [float(v) for v in REFERENCE_GRAVITY]
    return trunk_axis(x_raw)


def trunk_axis(x_raw: np.ndarray) -> list[float] | None:
    """The upright direction of a trunk-worn device, or None when the windows show no upright trunk.

    A trunk (waist, chest, a phone on the belt) is upright in most windows, and stays upright while the wearer
    moves: at least ``UPRIGHT_MIN_SHARE`` of all windows, and of the most active half (acc variation), lie
    within 30 degrees of the densest gravity direction. A wrist or an ankle swings and turns with the limb, so
    its active windows scatter; turning them about a "vertical" would teach the model postures that never occur.
    """
    from .augment import upright_axis

    if x_raw.shape[-1] != 6 or len(x_raw) == 0:
        return None
    axis, share = upright_axis(x_raw)
    activity = x_raw[..., :3].std(axis=1).sum(axis=-1)
    active = x_raw[activity >= np.median(activity)]
    g = active[..., :3].mean(axis=1).astype(np.float64)
    norms = np.linalg.norm(g, axis=1)
    active_share = float(np.mean((g @ axis) >= np.cos(np.deg2rad(30.0)) * norms)) if len(g) else 0.0
    if share < UPRIGHT_MIN_SHARE or active_share < UPRIGHT_MIN_SHARE:
        return None
    return [round(float(v), 6) for v in axis]


def resolve_orientation(opts: TrainOptions, ds: Any) -> tuple[TrainOptions, str]:
    """``opts`` with its orientation set, and why: ``"given"``, or :func:`default_orientation`'s reason."""
    if opts.orientation is not None:
        return opts, "given"
    mode, why = default_orientation(opts, ds)
    return dataclasses.replace(opts, orientation=mode), why


def default_orientation(opts: TrainOptions, ds: Any) -> tuple[str, str]:
    """The orientation a run without ``--orientation`` trains, and why.

    ``free`` for a cnn on a trunk-worn device's acc + gyro (g, rad/s): calibrated from walking and the postures
    seen, it scores as well as ``fixed`` worn as trained and stays right when the device is tilted or
    re-attached, where ``fixed`` falls to 29 % (RESULTS.md "Wear it anyhow"). ``fixed`` otherwise: the other
    archs were not measured calibrated, and a wrist, an ankle or a hand has no upright trunk to calibrate to.
    """
    if opts.arch != "cnn":
        return "fixed", f"--arch {opts.arch} is trained on the device frame as worn"
    if not reads_imu(ds.channels):
        return "fixed", "calibration needs acc_x..z in g and gyro_x..z in rad/s"
    fixed = dataclasses.replace(opts, orientation="fixed", train_stride=int(opts.stride or 1), max_windows=None)
    if trunk_axis(load_training_data(fixed, ds).train.x) is None:
        return "fixed", "no upright trunk posture in the training windows (a wrist, an ankle, a hand?)"
    return "free", ("trunk-worn (an upright posture in most windows): the stream calibrates to upright from "
                    "walking and the postures it sees, however the device is worn; --orientation fixed for a "
                    "device always worn as in the training data (and for hartool export c)")


def choose_recipe(opts: TrainOptions, data: Any) -> tuple[TrainOptions, dict[str, Any]]:
    """The recipe the data calls for, as options, and what was decided and why (for the manifest and stderr).

    Placement: without an upright trunk (:func:`trunk_axis`) a fixed-orientation model trains with a small random
    3-D tilt instead of turns about a vertical. Size: when the median class has fewer training windows than
    ``data.info.SMALL_DATA_WINDOWS_PER_CLASS``, the small-data recipe trains for at least
    ``SMALL_DATA_MIN_STEPS`` optimiser steps in batches of ``SMALL_DATA_BATCH``. Options the user set win.
    """
    from ..data.info import SMALL_DATA_WINDOWS_PER_CLASS, is_small_data
    from ..data.windowing import window_advice

    advice = window_advice(data.dataset, data.label_ids, int(opts.window))
    notes: list[str] = [advice] if advice else []
    if opts.arch == "knn":  # nothing is trained: no augmentation, no epochs to choose
        return opts, {"name": "templates", "placement": None, "notes": notes}
    trunk = opts.orientation == "free" or trunk_axis(data.train.x) is not None
    if not trunk and opts.aug_tilt_deg is None:
        opts = dataclasses.replace(opts, aug_tilt_deg=PLACEMENT_FREE_TILT_DEG)
        notes.append(f"no upright trunk posture in the training windows (a wrist, an ankle, a hand?): no turns about "
                     f"a vertical; placement-free augmentation instead (random tilt up to "
                     f"{PLACEMENT_FREE_TILT_DEG:g} deg, sensor gain jitter)")
    small = is_small_data(data.split.train)
    if small:
        median = int(np.median(list(data.split.train.class_counts().values())))
        batch = min(opts.batch_size, SMALL_DATA_BATCH)
        steps_per_epoch = max(1, int(np.ceil(len(data.train.y) / batch)))
        epochs = opts.epochs or min(SMALL_DATA_MAX_EPOCHS, max(DEFAULT_EPOCHS[opts.arch],
                                                               int(np.ceil(SMALL_DATA_MIN_STEPS / steps_per_epoch))))
        opts = dataclasses.replace(opts, batch_size=batch, epochs=epochs)
        notes.append(f"small-data recipe: {median} training windows in the median class (< "
                     f"{SMALL_DATA_WINDOWS_PER_CLASS}): {epochs} epochs in batches of {batch}, about "
                     f"{epochs * steps_per_epoch} steps")
    recipe = {"name": "small-data" if small else "default", "placement": "trunk" if trunk else "placement-free",
              "notes": notes}
    return opts, recipe


def _compile(model: Any, opts: TrainOptions, steps: int) -> None:
    """AdamW on a cosine schedule, EMA of the weights for long runs, smoothed cross-entropy."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(opts.learning_rate, decay_steps=max(1, steps), alpha=0.05)
    model.compile(
        # EMA of the weights: the test accuracy of one epoch's weights wobbles by ~1 pp across subjects;
        # the average of the last ~1000 steps is steadier (Keras swaps it in when fit() ends). The EMA starts
        # from the random initial weights, so short runs (<3000 steps keep >5 % of them) go without it.
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=opts.weight_decay, use_ema=steps >= EMA_MIN_STEPS,
                                         ema_momentum=0.999),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=opts.resolved_recipe("label_smoothing")),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
