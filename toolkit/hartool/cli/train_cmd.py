"""`hartool train`: fit a classifier and write a model bundle."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..core.metrics import format_confusion
from .common import emit_json, pct, status, table
from .lengths import LENGTH, STRIDE_HELP, WINDOW_HELP

if TYPE_CHECKING:
    from ..train.auto import AutoResult


@click.command()
@click.option("--arch", type=click.Choice(["auto", "cnn", "lstm", "cnn-lstm", "bilstm", "features", "knn"]),
              default=None,
              help="auto: cross-validate cnn and features (and knn on small data) on the training subjects; keep cnn "
                   "unless another is clearly better (default for csv:DIR without --cv; cnn otherwise). cnn: "
                   "CNN-only, quantizes to full int8. lstm: 2x LSTM(64). cnn-lstm, bilstm: seed variants. features: "
                   "statistical/spectral features (numpy, bands up to Nyquist) + a small MLP. knn: nearest training "
                   "window (templates, nothing trained; Euclidean or a DTW-like band chosen on them), for a handful "
                   "of examples per class.")
@click.option("--dataset", default="hapt", show_default=True,
              help="hapt (embedded UCI HAPT), uci-har:PATH (UCI HAR Dataset folder) or csv:DIR (your recordings).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Bundle directory to write.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs (default per arch: cnn 30, lstm 25, cnn-lstm 30, bilstm 15, features 30).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the split, init and shuffling.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--window", type=LENGTH, default=None, help=WINDOW_HELP)
@click.option("--stride", type=LENGTH, default=None, help=STRIDE_HELP)
@click.option("--train-stride", type=click.IntRange(min=1), default=None,
              help="Hop between training windows in samples, denser = shift augmentation (default: cnn 1/8 of the "
                   "window, lstm 1/4).")
@click.option("--include-transitions", is_flag=True, help="Also learn HAPT's 6 postural transitions (labels 7..12).")
@click.option("--labels", "labels", default=None, metavar="A,B,...",
              help="Train on these activities only, in this class order; the others are left out of every split.")
@click.option("--test-subjects", default=None, metavar="S,...",
              help="Test subjects, names or numbers as in '# subject:' (default: UCI's 9 for hapt/uci-har, "
                   "a seeded ~30% for csv:DIR).")
@click.option("--val-subjects", default=None, metavar="S,...",
              help="Validation subjects (default: a seeded 15% of the non-test subjects).")
@click.option("--cv", type=click.Choice(["loso"]), default=None,
              help="loso: leave each subject out in turn and report a table; the bundle is then trained on everyone.")
@click.option("--orientation", type=click.Choice(["fixed", "free"]), default=None,
              help="free: worn any way round; the stream calibrates to upright from walking and the postures it "
                   "sees, nothing asked of the wearer (default for cnn on a trunk-worn device's acc + gyro). "
                   "fixed: the device is always worn as in the training data (default otherwise; needed for "
                   "hartool export c).")
@click.option("--yaw-aug", "yaw_aug", type=click.FloatRange(0, 180), default=None, metavar="DEG",
              help="Turn each training window about the upright axis by up to DEG either way, as when the device "
                   "is clipped on turned (default: cnn and lstm 180, others 0; 0 = off).")
@click.option("--patience", type=click.IntRange(min=1), default=None,
              help="Stop after this many epochs without a better validation accuracy (default: run every epoch).")
@click.option("--select", type=click.Choice(["last", "best-val"]), default="last", show_default=True,
              help="Keep the weights at the end of the LR schedule, or the best validation checkpoint.")
@click.option("--class-weights", is_flag=True, help="Weight classes inversely to their frequency.")
@click.option("--tensorboard", type=click.Path(path_type=Path), default=None, help="Write TensorBoard logs here.")
@click.option("--max-windows", type=int, default=None, hidden=True, help="Cap windows per split (smoke tests).")
@click.option("--quiet", is_flag=True, help="No Keras progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def train(arch: str | None, dataset: str, out: Path, epochs: int | None, seed: int, batch_size: int,
          window: str | None, stride: str | None, train_stride: int | None, include_transitions: bool,
          labels: str | None, test_subjects: str | None, val_subjects: str | None, cv: str | None, orientation: str | None,
          yaw_aug: float | None, patience: int | None, select: str, class_weights: bool,
          tensorboard: Path | None, max_windows: int | None, quiet: bool, as_json: bool) -> None:
    """Train a HAR classifier and write a bundle (manifest.json + model.keras + plots).

    \b
    Example:
      hartool train --arch cnn --dataset hapt --out bundles/cnn
      hartool train --arch lstm --out bundles/lstm --epochs 40 --json
      hartool train --dataset csv:my-data --test-subjects alice --labels WALKING,SITTING --out bundles/mine
      hartool train --dataset csv:my-data --cv loso --out bundles/mine
      hartool train --dataset csv:watch --window 2s --arch auto --out bundles/watch
    """
    from ..train.fit import TrainOptions

    if arch is None:  # auto for the user's own recordings; --cv loso evaluates one arch
        arch = "auto" if dataset.strip().lower().startswith("csv:") and cv is None else "cnn"
    if arch == "auto" and cv is not None:
        raise click.UsageError("--arch auto cross-validates by itself; choose an arch for --cv loso")
    opts = TrainOptions(arch="cnn" if arch == "auto" else arch, dataset=dataset, out=out, epochs=epochs, seed=seed,
                        batch_size=batch_size,
                        window=window, stride=stride, train_stride=train_stride,
                        include_transitions=include_transitions, select=select, class_weights=class_weights,
                        tensorboard=tensorboard, max_windows=max_windows, verbose=0 if quiet else 2,
                        labels=_names(labels, "--labels"), test_subjects=_names(test_subjects, "--test-subjects"),
                        val_subjects=_names(val_subjects, "--val-subjects"), orientation=orientation,
                        aug_yaw_deg=yaw_aug, patience=patience)
    status(f"training {arch} on {dataset} -> {out}")
    result, cv_result, auto_result = _run(arch, cv, opts)
    for note in result.notes:
        status(note)
    if as_json:
        emit_json({"bundle": str(result.bundle.parent), "arch": result.arch,
                   "train_time_s": round(result.train_time_s, 2),
                   "epochs_run": result.epochs_run, "n_params": result.n_params, "windows": result.windows,
                   "metrics": result.metrics})
        return
    if cv_result is not None:
        _echo_cv(cv_result.folds, cv_result.summary)
    if auto_result is not None:
        _echo_auto(auto_result)
    _echo_result(result, every_subject=cv_result is not None)


def _split_line(manifest_path: Path) -> str:
    """``subjects: test carol (given); validation alice (seeded); train bob, dave`` from the written manifest."""
    import json

    ds = json.loads(manifest_path.read_text())["dataset"]
    how = ds.get("split", {})
    parts = [f"{key} {', '.join(ds.get(f'{key}_subject_names', [])) or '-'}"
             + (f" ({how[key]})" if how.get(key) else "") for key in ("test", "val")]
    return f"subjects: {'; '.join(parts)}; train {', '.join(ds.get('train_subject_names', []))}"


def _names(text: str | None, option: str) -> tuple[str, ...] | None:
    """``"a, b"`` -> ``("a", "b")``; an option given but empty is a usage error, not "use the default"."""
    if text is None:
        return None
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise click.BadParameter("name at least one", param_hint=option)
    return names


def _echo_cv(folds: list[dict], summary: dict) -> None:
    click.echo(f"leave-one-subject-out: {summary['n_folds']} folds")
    click.echo(table(["subject", "test windows", "accuracy", "macro-F1"],
                     [[f["subject"], f["windows"], pct(f["accuracy"]), pct(f["macro_f1"])] for f in folds]))
    click.echo(f"mean accuracy {pct(summary['accuracy_mean'])} ± {pct(summary['accuracy_sd'])}, "
               f"macro-F1 {pct(summary['macro_f1_mean'])} ± {pct(summary['macro_f1_sd'])} (sd over subjects)")


def _echo_auto(auto: AutoResult) -> None:
    budget = auto.budget
    click.echo(f"auto: cross-validated on the training subjects, {budget['folds']} folds ({budget['why']})")
    if auto.table:
        click.echo(table(["arch", "folds", "accuracy", "sd", "macro-F1"],
                         [[r["arch"], r["folds"], pct(r["accuracy_mean"]), pct(r["accuracy_sd"]),
                           pct(r["macro_f1_mean"])] for r in auto.table]))
    else:
        click.echo("too few training subjects to cross-validate: picked by the data's size")
    click.echo(f"auto picked {auto.picked}")


def _run(arch: str, cv: str | None, opts: Any) -> tuple[Any, Any, Any]:
    """(final result, LOSO result or None, auto result or None), training as ``arch``/``cv`` ask."""
    from ..train.fit import train as run_train

    # Keras writes progress to stdout; keep stdout for data (the table or --json).
    with contextlib.redirect_stdout(sys.stderr):
        if arch == "auto":
            from ..train.auto import train_auto

            auto = train_auto(opts, on_fold=lambda f: status(
                f"auto: {f['arch']} on held-out {', '.join(f['subjects'])}: accuracy {pct(f['accuracy'])}"))
            return auto.final, None, auto
        if cv == "loso":
            from ..train.cv import train_loso

            loso = train_loso(opts, on_fold=lambda f: status(
                f"fold {f['subject']}: accuracy {pct(f['accuracy'])} on {f['windows']} windows"))
            return loso.final, loso, None
        return run_train(opts), None, None


def _echo_result(result: Any, every_subject: bool) -> None:
    """The human report of a trained bundle: split, scores, per-class table, confusion matrix."""
    test = result.metrics["test"]
    class_names = list(test["per_class"])
    click.echo(f"bundle: {result.bundle.parent}")
    click.echo(_split_line(result.bundle))
    if every_subject:
        click.echo("final model trained on every subject; the scores below are on its own training subjects")
    click.echo(f"{result.arch}: test accuracy {pct(test['accuracy'])}, macro-F1 {pct(test['macro_f1'])}, "
               f"val accuracy {pct(result.metrics['val']['accuracy'])}, {result.epochs_run} epochs, "
               f"{result.train_time_s:.0f} s, {result.n_params:,} params")
    click.echo(table(["class", "precision", "recall", "f1", "support"],
                     [[n, pct(c["precision"], 1), pct(c["recall"], 1), pct(c["f1"], 1), c["support"]]
                      for n, c in test["per_class"].items()]))
    click.echo("confusion (rows true, columns predicted):")
    click.echo(format_confusion(test["confusion"], class_names))
