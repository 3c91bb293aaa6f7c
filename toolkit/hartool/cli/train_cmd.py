"""`hartool train`: fit a classifier and write a model bundle."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from ..core.metrics import format_confusion
from .common import emit_json, pct, status, table


@click.command()
@click.option("--arch", type=click.Choice(["cnn", "lstm", "cnn-lstm", "bilstm"]), default="cnn", show_default=True,
              help="cnn: CNN-only, quantizes to full int8. lstm: 2x LSTM(64). cnn-lstm, bilstm: seed variants.")
@click.option("--dataset", default="hapt", show_default=True,
              help="hapt (embedded UCI HAPT), uci-har:PATH (UCI HAR Dataset folder) or csv:DIR (your recordings).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Bundle directory to write.")
@click.option("--epochs", type=int, default=None,
              help="Epochs (default per arch: cnn 30, lstm 25, cnn-lstm 30, bilstm 15).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the split, init and shuffling.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--window", type=int, default=128, show_default=True, help="Window length in samples.")
@click.option("--stride", type=int, default=64, show_default=True, help="Hop between evaluation windows.")
@click.option("--train-stride", type=int, default=None,
              help="Hop between training windows, denser = shift augmentation (default: cnn 16, lstm 32).")
@click.option("--include-transitions", is_flag=True, help="Also learn HAPT's 6 postural transitions (labels 7..12).")
@click.option("--select", type=click.Choice(["last", "best-val"]), default="last", show_default=True,
              help="Keep the weights at the end of the LR schedule, or the best validation checkpoint.")
@click.option("--class-weights", is_flag=True, help="Weight classes inversely to their frequency.")
@click.option("--tensorboard", type=click.Path(path_type=Path), default=None, help="Write TensorBoard logs here.")
@click.option("--max-windows", type=int, default=None, hidden=True, help="Cap windows per split (smoke tests).")
@click.option("--quiet", is_flag=True, help="No Keras progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def train(arch: str, dataset: str, out: Path, epochs: int | None, seed: int, batch_size: int, window: int,
          stride: int, train_stride: int | None, include_transitions: bool, select: str, class_weights: bool,
          tensorboard: Path | None, max_windows: int | None, quiet: bool, as_json: bool) -> None:
    """Train a HAR classifier and write a bundle (manifest.json + model.keras + plots).

    \b
    Example:
      hartool train --arch cnn --dataset hapt --out bundles/cnn
      hartool train --arch lstm --out bundles/lstm --epochs 40 --json
    """
    from ..train.fit import TrainOptions
    from ..train.fit import train as run_train

    if epochs is not None and epochs < 1:
        raise click.BadParameter("must be >= 1", param_hint="--epochs")
    opts = TrainOptions(arch=arch, dataset=dataset, out=out, epochs=epochs, seed=seed, batch_size=batch_size,
                        window=window, stride=stride, train_stride=train_stride,
                        include_transitions=include_transitions, select=select, class_weights=class_weights,
                        tensorboard=tensorboard, max_windows=max_windows, verbose=0 if quiet else 2)
    status(f"training {arch} on {dataset} -> {out}")
    # Keras writes progress to stdout; keep stdout for data (the table or --json).
    with contextlib.redirect_stdout(sys.stderr):
        result = run_train(opts)
    test = result.metrics["test"]
    if as_json:
        emit_json({"bundle": str(result.bundle.parent), "arch": arch, "train_time_s": round(result.train_time_s, 2),
                   "epochs_run": result.epochs_run, "n_params": result.n_params, "windows": result.windows,
                   "metrics": result.metrics})
        return
    labels = list(test["per_class"])
    click.echo(f"bundle: {result.bundle.parent}")
    click.echo(f"{arch}: test accuracy {pct(test['accuracy'])}, macro-F1 {pct(test['macro_f1'])}, "
               f"val accuracy {pct(result.metrics['val']['accuracy'])}, {result.epochs_run} epochs, "
               f"{result.train_time_s:.0f} s, {result.n_params:,} params")
    click.echo(table(["class", "precision", "recall", "f1", "support"],
                     [[n, pct(c["precision"], 1), pct(c["recall"], 1), pct(c["f1"], 1), c["support"]]
                      for n, c in test["per_class"].items()]))
    click.echo("confusion (rows true, columns predicted):")
    click.echo(format_confusion(test["confusion"], labels))
