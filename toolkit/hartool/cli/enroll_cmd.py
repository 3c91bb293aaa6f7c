"""`hartool enroll`: teach a bundle a new activity or adapt it to its wearer, on the device (no TensorFlow)."""

from __future__ import annotations

import os

# The head's small matrix products gain nothing from BLAS threads, and on a busy 2-core machine those
# threads spin: one enrollment measured 29 s of CPU (269 s wall) with OpenBLAS's default threads against
# 0.9 s (19 s) with one. The CLI imports this module before numpy (commands load lazily), so setting it
# first takes effect.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402  (after the setting above: the source options load numpy)

import click  # noqa: E402

from ..wire.spec import SourceSpec  # noqa: E402
from .common import emit_json, pct, status, table  # noqa: E402
from .options import source_options  # noqa: E402


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--label", default=None, help="The activity to teach, e.g. BRUSHING_TEETH (or, with --personalize "
                                            "and a live source, the activity being recorded).")
@source_options("Any source 'stream' reads: device path, socket/listener URL, '-' or a recorded CSV file "
                "(with --personalize: a labelled CSV recording or a folder of them).", required=False)
@click.option("--seconds", type=click.FloatRange(1.0, 3600.0), default=30.0, show_default=True,
              help="How much of the activity to record (a file: its first SECONDS).")
@click.option("--personalize", is_flag=True,
              help="Adapt the model's own activities to this wearer from a short labelled recording.")
@click.option("--replace", is_flag=True, help="Enroll LABEL again, replacing what was taught for it.")
@click.option("--remove", "remove_label", default=None, metavar="LABEL", help="Undo what was taught for LABEL.")
@click.option("--list", "list_", is_flag=True, help="Show what was taught, by whom and when.")
@click.option("--artifact", default=None, help="Artifact to compute embeddings with (default: the one stream runs).")
@click.option("--by", default=None, help="Who enrolls (default: the login name).")
@click.option("--min-seconds", type=click.FloatRange(0.0, 600.0), default=10.0, show_default=True,
              help="Shorter recordings are refused.")
@click.option("--min-recall", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Refuse to save a new activity whose expected recall (held-out half) is below this.")
@click.option("--force", is_flag=True, help="Save the head even below --min-recall.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def enroll(bundle: Path, label: str | None, source: SourceSpec | None, seconds: float, personalize: bool,
           replace: bool, remove_label: str | None, list_: bool, artifact: str | None, by: str | None,
           min_seconds: float, min_recall: float, force: bool, as_json: bool) -> None:
    """Teach BUNDLE a new activity from SECONDS of the wearer doing it; numpy and the interpreter only.

    The bundle keeps the fitted head (head-*.npz), the wearer's windows (enroll-*.npz) and, in its
    manifest, who taught what and when; `hartool stream` applies the head after the interpreter.

    \b
    Example:
      hartool enroll bundles/cnn --label BRUSHING_TEETH --port /dev/ttyACM0 --seconds 30
      hartool enroll bundles/cnn --label BRUSHING_TEETH --port brushing.csv --replace
      hartool enroll bundles/cnn --label BRUSHING_TEETH --port http://0.0.0.0:8000/data   # Sensor Logger
      hartool enroll bundles/cnn --personalize --port my-walks.csv
      hartool enroll bundles/cnn --list
      hartool enroll bundles/cnn --remove BRUSHING_TEETH
    """
    from ..runtime import enroll as lib

    if list_:
        _print_list(lib.list_enrolled(bundle), as_json)
        return
    if remove_label:
        result = lib.remove(bundle, remove_label)
        status(f"removed {remove_label}; head now: {(result.head or {}).get('name', 'none (model only)')}")
        if as_json:
            emit_json(_result_json(result))
        return
    if source is None:
        raise click.UsageError("give --port SRC to record from (or --list / --remove LABEL)")
    if not personalize and not label:
        raise click.UsageError("give --label NAME for the new activity (or --personalize)")
    opts = lib.EnrollOptions(source, label=label, seconds=seconds, personalize=personalize, replace=replace,
                             artifact=artifact, by=by, min_seconds=min_seconds, min_recall=min_recall,
                             force=force, on_progress=_countdown)
    status(f"{'personalizing' if personalize else 'enrolling ' + str(label)} from {source.port}")
    result = lib.enroll(bundle, opts, on_status=status)
    for line in result.warnings:
        status(line)
    if as_json:
        emit_json(_result_json(result))
        return
    head = result.head or {}
    click.echo(f"{'personalized' if personalize else 'enrolled'} {', '.join(result.added)}: {result.windows} windows "
               f"from {result.seconds:.1f} s in {result.elapsed_s:.1f} s; head {head.get('name')} "
               f"({head.get('artifact')}), labels: {', '.join([*head.get('base_labels', []), *head.get('new_labels', [])])}")
    for name, exp in result.expected.items():
        if exp:
            click.echo(f"expected recall of {name}: {pct(exp['recall'], 0)} (held-out half of the recording)")


def _countdown(done_s: int, want_s: int) -> None:
    """Progress of the capture on stderr: every 5 s captured, and the last second."""
    if done_s % 5 == 0 or done_s >= want_s:
        status(f"captured {done_s} s of {want_s} s" + (f" ({want_s - done_s} s to go)" if done_s < want_s else ""))


def _result_json(result: object) -> dict:
    from dataclasses import asdict

    data = asdict(result)  # type: ignore[call-overload]
    data["bundle"] = str(data["bundle"])
    return data


def _print_list(info: dict, as_json: bool) -> None:
    if as_json:
        emit_json(info)
        return
    click.echo(f"bundle: {info['bundle']} ({', '.join(info['labels'])})")
    if not info["embedding"]:
        click.echo("no embedding output: re-run 'hartool quantize' before enrolling")
    rows = [[e["label"], "new activity", e.get("by"), e.get("at"), f"{e.get('seconds', 0):.0f} s", e.get("windows"),
             e.get("source")] for e in info["enrolled"]]
    rows += [[e["label"], "personalized", e.get("by"), e.get("at"), f"{e.get('seconds', 0):.0f} s", e.get("windows"),
              e.get("source")] for e in info["personalization"]]
    if not rows:
        click.echo("nothing enrolled: the model's own head answers")
        return
    click.echo(f"head: {info['head']} (embeddings from {info['artifact']})")
    click.echo(table(["label", "kind", "by", "when", "recorded", "windows", "source"], rows))
