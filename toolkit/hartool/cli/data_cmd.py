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
@click.option("--window", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--stride", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--include-transitions", is_flag=True, help="Count HAPT's postural transitions too.")
@click.option("--labels", default=None, metavar="A,B,...", help="Only these activities (as `train --labels`).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the default split shown.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def info(dataset: str, window: int, stride: int, include_transitions: bool, labels: str | None, seed: int,
         as_json: bool) -> None:
    """Subjects, seconds and windows per subject x label, the default split and warnings for DATASET.

    Warnings flag too little data to train or test: a class with fewer than 30 windows in all or recorded
    by a single subject, a subject x class with fewer than 5 windows, labelled runs shorter than a window,
    fewer than two subjects.

    \b
    Example:
      hartool data info hapt
      hartool data info csv:my-data
      hartool data info "uci-har:UCI HAR Dataset" --json
    """
    from ..data import load_dataset, make_windows
    from ..data.info import data_report

    ds = load_dataset(dataset)
    names = [t.strip() for t in labels.split(",")] if labels is not None else None
    windows = make_windows(ds, window, stride, include_transitions=include_transitions, labels=names,
                           allow_empty=True)
    summary = data_report(ds, windows, seed=seed)
    if as_json:
        emit_json(summary)
        return
    click.echo(f"dataset: {summary['name']}")
    click.echo(f"sample rate: {summary['sample_rate_hz']:g} Hz; window {window} / stride {stride} samples")
    click.echo("channels: " + ", ".join(f"{c['name']} [{c['unit']}]" for c in summary["channels"]))
    click.echo(f"subjects ({len(summary['subject_names'])}): {' '.join(summary['subject_names'])}")
    click.echo(f"recordings: {summary['n_recordings']}, samples: {summary['n_samples']:,}, "
               f"windows: {summary['n_windows']:,}")
    for key in ("train_windows", "test_windows"):
        if key in summary:
            click.echo(f"{key.replace('_', ' ')} (UCI HAR split): {summary[key]:,}")
    click.echo(table(["class", "windows"], list(summary["windows_per_class"].items())))
    _echo_subject_table(summary)
    split = summary["default_split"]
    if "error" not in split:
        click.echo(f"default split ({split['test_from']} test, {split['val_from']} validation): "
                   f"test {', '.join(split['test'])}; validation {', '.join(split['val']) or '-'}; "
                   f"train {', '.join(split['train'])}")
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}", err=True)


def _echo_subject_table(summary: dict) -> None:
    classes = list(summary["classes"])
    rows = [[r["subject"], *(f"{r['labels'][c]['seconds']:.0f}/{r['labels'][c]['windows']}" for c in classes),
             f"{r['seconds']:.0f}/{r['windows']}"] for r in summary["per_subject"]]
    click.echo("seconds/windows per subject x class:")
    click.echo(table(["subject", *classes, "total"], rows))
