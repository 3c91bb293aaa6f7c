"""`hartool data`: inspect datasets before training."""

from __future__ import annotations

import click

from .common import emit_json, table


@click.group()
def data() -> None:
    """Inspect datasets (hapt, uci-har:PATH, csv:DIR).

    \b
    Example:
      hartool data info
      hartool data info csv:recordings/ --json
    """


@data.command()
@click.argument("dataset", default="hapt")
@click.option("--window", type=int, default=128, show_default=True)
@click.option("--stride", type=int, default=64, show_default=True)
@click.option("--include-transitions", is_flag=True, help="Count HAPT's postural transitions too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def info(dataset: str, window: int, stride: int, include_transitions: bool, as_json: bool) -> None:
    """Subjects, windows per class, sample rate and channels of DATASET.

    \b
    Example:
      hartool data info hapt
      hartool data info "uci-har:UCI HAR Dataset"
    """
    from ..data import dataset_info, load_dataset, make_windows

    ds = load_dataset(dataset)
    windows = make_windows(ds, window, stride, include_transitions=include_transitions)
    summary = dataset_info(ds, windows)
    if as_json:
        emit_json(summary)
        return
    click.echo(f"dataset: {summary['name']}")
    click.echo(f"sample rate: {summary['sample_rate_hz']:g} Hz; window {window} / stride {stride} samples")
    click.echo("channels: " + ", ".join(f"{c['name']} [{c['unit']}]" for c in summary["channels"]))
    click.echo(f"subjects ({len(summary['subjects'])}): {' '.join(str(s) for s in summary['subjects'])}")
    click.echo(f"recordings: {summary['n_recordings']}, samples: {summary['n_samples']:,}, "
               f"windows: {summary['n_windows']:,}")
    for key in ("train_windows", "test_windows"):
        if key in summary:
            click.echo(f"{key.replace('_', ' ')} (UCI HAR split): {summary[key]:,}")
    click.echo(table(["class", "windows"], sorted(summary["windows_per_class"].items())))
