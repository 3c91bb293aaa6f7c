"""`hartool export`: the model as source code for devices without an interpreter (`hartool export c`)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import emit_json, status


@click.group()
def export() -> None:
    """Export a bundle's model as source code."""


@export.command("c")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the library (Arduino layout: library.properties, src/, examples/).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON on stdout.")
def export_c_cmd(bundle: Path, out: Path, as_json: bool) -> None:
    """Write BUNDLE's full-int8 model as a C99 library: no malloc, const weights, one static arena.

    The library takes raw samples in the bundle's channel order and units and does the bundle's
    preprocessing and windowing itself; its int8 arithmetic is TFLite Micro's.

    \b
    Example:
      hartool quantize bundles/cnn --formats tflite --modes int8
      hartool export c bundles/cnn --out hartool_model
      gcc -std=c99 -O2 -c hartool_model/src/*.c
    """
    from ..export.c.library import export_c

    info = export_c(bundle, out)
    if as_json:
        emit_json(info)
        return
    status(f"wrote {len(info['sources'])} C files to {info['out']}/src ({len(info['ops'])} ops)")
    click.echo(f"weights (const, flash): {info['weight_bytes']:,} B")
    click.echo(f"arena (static RAM):     {info['arena_bytes']:,} B")
    click.echo(f"library:                {info['out']} (Arduino: library.properties, src/, examples/)")
