"""`hartool data`: inspect datasets before training."""

from __future__ import annotations

import click

from .common import emit_json, table
from .lengths import LENGTH, STRIDE_HELP, WINDOW_HELP


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
@click.option("--window", type=LENGTH, default=None, help=WINDOW_HELP)
@click.option("--stride", type=LENGTH, default=None, help=STRIDE_HELP)
@click.option("--include-transitions", is_flag=True, help="Count HAPT's postural transitions too.")
@click.option("--labels", default=None, metavar="A,B,...", help="Only these activities (as `train --labels`).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the default split shown.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def info(dataset: str, window: str | None, stride: str | None, include_transitions: bool, labels: str | None,
         seed: int, as_json: bool) -> None:
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
    from ..data.windowing import DEFAULT_STRIDE_S, DEFAULT_WINDOW_S, to_samples

    ds = load_dataset(dataset)
    names = [t.strip() for t in labels.split(",")] if labels is not None else None
    window_n = to_samples(window, ds.sample_rate_hz, DEFAULT_WINDOW_S)
    stride_n = to_samples(stride, ds.sample_rate_hz, DEFAULT_STRIDE_S)
    windows = make_windows(ds, window_n, stride_n, include_transitions=include_transitions, labels=names,
                           allow_empty=True)
    summary = data_report(ds, windows, seed=seed)
    if as_json:
        emit_json(summary)
        return
    click.echo(f"dataset: {summary['name']}")
    rate = summary["sample_rate_hz"]
    click.echo(f"sample rate: {rate:g} Hz; window {window_n} / stride {stride_n} samples "
               f"({window_n / rate:.2f} s / {stride_n / rate:.2f} s)")
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
    _echo_recommendation(summary["recommendation"])


def _echo_recommendation(rec: dict) -> None:
    click.echo("recommendation:")
    click.echo(f"  window: {rec['window_text']}" + (" (the current window leaves too much out)"
                                                     if rec["window_changed"] else ""))
    why = ("very few windows per class: the feature model usually wins, and auto also scores the nearest-"
           "template model (--arch knn), which won on a set of 50 short gestures" if rec["arch"] == "features"
           else "enough windows for a CNN to match the features or beat them")
    click.echo(f"  arch: --arch auto would likely pick {rec['arch']} ({why})")
    if rec["more_data"]:
        click.echo(f"  more data: {rec['more_data']}")


def _echo_subject_table(summary: dict) -> None:
    classes = list(summary["classes"])
    rows = [[r["subject"], *(f"{r['labels'][c]['seconds']:.0f}/{r['labels'][c]['windows']}" for c in classes),
             f"{r['seconds']:.0f}/{r['windows']}"] for r in summary["per_subject"]]
    click.echo("seconds/windows per subject x class:")
    click.echo(table(["subject", *classes, "total"], rows))
