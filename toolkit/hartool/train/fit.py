"""Fit a classifier on a dataset's subject split, evaluate on the test subjects, and write the bundle."""

from __future__ import annotations

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
from ..core.preprocess import fit_preprocessing, preprocess
from .models import ARCHS

# Defaults that reach the accuracy targets on 2 CPU cores within the time budget (see benchmarks/RESULTS.md).
DEFAULT_EPOCHS = {"cnn": 30, "lstm": 25, "cnn-lstm": 30, "bilstm": 15}
# Weight averaging starts from the random initial weights: below this many steps it keeps too much of them.
EMA_MIN_STEPS = 3000
# Hop between training windows: denser for the cheap convolutional models, sparser for recurrent ones
# (an LSTM step per sample is what costs time on a CPU).
DEFAULT_TRAIN_STRIDE = {"cnn": 16, "lstm": 32, "cnn-lstm": 16, "bilstm": 32}


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
    window: int = 128
    stride: int = 64
    # Training windows are cut denser than evaluation windows (a free shift augmentation);
    # validation and test always use `stride`, so reported numbers match the UCI HAR protocol.
    train_stride: int | None = None
    val_fraction: float = 0.15
    include_transitions: bool = False
    class_weights: bool = False
    tensorboard: Path | None = None
    # Early stopping waits long: the cosine schedule does its best work in the last epochs.
    patience: int = 15
    # "last": weights at the end of the cosine schedule; "best-val": the best validation checkpoint.
    # With 3 validation subjects, validation accuracy tracks test accuracy poorly (see RESULTS.md), so the
    # annealed final weights are the default; the best-val checkpoint is kept in the bundle either way.
    select: str = "last"
    weight_decay: float = 1e-3
    # Caps per split, for tests and smoke runs only.
    max_windows: int | None = None
    verbose: int = 1

    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.arch]

    def resolved_train_stride(self) -> int:
        return self.train_stride if self.train_stride is not None else DEFAULT_TRAIN_STRIDE[self.arch]


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


def train(opts: TrainOptions) -> TrainResult:
    """Train ``opts.arch`` on ``opts.dataset`` and write a complete bundle to ``opts.out``."""
    if opts.arch not in ARCHS:
        raise HartoolError(f"unknown arch {opts.arch!r}; choose one of {', '.join(ARCHS)}")
    if opts.select not in ("last", "best-val"):
        raise HartoolError(f"unknown --select {opts.select!r}; choose last or best-val")
    from ..data import load_dataset, make_windows, split_by_subject
    from ..data.evalset import cap_windows

    ds = load_dataset(opts.dataset)
    evaluation = make_windows(ds, opts.window, opts.stride, include_transitions=opts.include_transitions)
    split = split_by_subject(evaluation, val_fraction=opts.val_fraction, seed=opts.seed)
    dense = make_windows(ds, opts.window, opts.resolved_train_stride(), include_transitions=opts.include_transitions)
    train_w = dense.subset(np.isin(dense.subject, split.train_subjects))
    train_w = cap_windows(train_w, opts.max_windows, opts.seed)
    val_w = cap_windows(split.val, opts.max_windows, opts.seed)
    test_w = cap_windows(split.test, opts.max_windows, opts.seed)
    for name, w in (("training", train_w), ("validation", val_w), ("test", test_w)):
        if len(w.y) == 0:
            raise DataError(f"{opts.dataset}: no {name} windows (check subjects, window and stride)")

    # Imported here so that nothing outside training pays TensorFlow's start-up cost.
    import keras

    from .models import build_model

    keras.utils.set_random_seed(opts.seed)
    spec = fit_preprocessing(train_w.x)
    x_train, x_val, x_test = (preprocess(w.x, spec) for w in (train_w, val_w, test_w))
    n_classes = len(evaluation.labels)
    model = build_model(opts.arch, n_classes, opts.window, x_train.shape[-1])
    epochs = opts.resolved_epochs()
    steps = int(np.ceil(len(x_train) / opts.batch_size)) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(opts.learning_rate, decay_steps=max(1, steps), alpha=0.05)
    model.compile(
        # EMA of the weights: the test accuracy of one epoch's weights wobbles by ~1 pp across subjects;
        # the average of the last ~1000 steps is steadier (Keras swaps it in when fit() ends). The EMA starts
        # from the random initial weights, so short runs (<3000 steps keep >5 % of them) go without it.
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=opts.weight_decay, use_ema=steps >= EMA_MIN_STEPS,
                                         ema_momentum=0.999),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "best_val.weights.h5"
    callbacks: list[Any] = [
        keras.callbacks.ModelCheckpoint(str(ckpt), monitor="val_accuracy", save_best_only=True,
                                        save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=opts.patience),
        keras.callbacks.CSVLogger(str(out / "history.csv")),
    ]
    if opts.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(opts.tensorboard)))
    class_weight = None
    if opts.class_weights:
        counts = np.bincount(train_w.y, minlength=n_classes).astype(np.float64)
        class_weight = {i: float(len(train_w.y) / (n_classes * c)) for i, c in enumerate(counts) if c > 0}

    started = time.perf_counter()
    history = model.fit(
        x_train, train_w.y, validation_data=(x_val, val_w.y), epochs=epochs, batch_size=opts.batch_size,
        shuffle=True, callbacks=callbacks, class_weight=class_weight, verbose=opts.verbose,
    )
    train_time = time.perf_counter() - started
    if opts.select == "best-val" and ckpt.exists():
        model.load_weights(str(ckpt))

    probs = {name: model.predict(x, batch_size=256, verbose=0) for name, x in (("val", x_val), ("test", x_test))}
    metrics = {
        "val": classification_report(val_w.y, probs["val"].argmax(1), evaluation.labels),
        "test": classification_report(test_w.y, probs["test"].argmax(1), evaluation.labels),
    }
    # Keras float predictions are kept so quantize can report top-1 agreement without reloading Keras.
    np.save(out / "keras_test_probs.npy", probs["test"].astype(np.float32))

    tmp_model = out / ".model.tmp.keras"
    model.save(str(tmp_model))
    os.replace(tmp_model, out / "model.keras")
    epochs_run = len(history.history.get("loss", []))
    manifest = {
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
        "input": {"shape": [1, opts.window, int(x_train.shape[-1])], "dtype": "float32"},
        "preprocessing": spec,
        "training": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
            "epochs": epochs,
            "train_stride": opts.resolved_train_stride(),
            "epochs_run": epochs_run,
            "train_time_s": round(train_time, 2),
            "n_params": int(model.count_params()),
            "best_val_accuracy": float(max(history.history.get("val_accuracy", [0.0]))),
        },
        "dataset": {
            "name": ds.name,
            "train_subjects": split.train_subjects,
            "val_subjects": split.val_subjects,
            "test_subjects": split.test_subjects,
            "windows": {"train": len(train_w.y), "val": len(val_w.y), "test": len(test_w.y)},
            "max_windows": opts.max_windows,
        },
        "metrics": metrics,
        "model": {"format": "keras", **file_entry(out / "model.keras", out)},
        "artifacts": [],
    }
    bundle = Bundle(out, manifest)
    bundle.save()
    try:
        from .plots import save_confusion_png

        save_confusion_png(metrics["test"]["confusion"], evaluation.labels, out / "confusion.png",
                           title=f"{opts.arch} on {ds.name} test subjects")
    except ImportError:  # matplotlib is in the train extra, but a plot is never worth failing a run
        pass
    return TrainResult(
        bundle=out / MANIFEST, arch=opts.arch, metrics=metrics, train_time_s=train_time, epochs_run=epochs_run,
        n_params=int(model.count_params()),
        windows={"train": len(train_w.y), "val": len(val_w.y), "test": len(test_w.y)},
    )
