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


MCU_WINDOWS = 8


def mcu_benchmark(bundle: Path, targets: tuple[str, ...], seed: int, as_json: bool) -> None:
    """`hartool benchmark BUNDLE --target T`: export the C library and measure it on each microcontroller target."""
    import tempfile

    import numpy as np

    from ..bench.mcu import target_row
    from ..core.bundle import Bundle
    from ..export.c.library import export_c
    from .common import table

    b = Bundle.load(bundle)
    # Seeded random windows, like the LiteRT rows: the op sequence and shapes, not the data, set the cost.
    windows = np.random.default_rng(seed).normal(0, 1, (MCU_WINDOWS, b.window, len(b.channels))).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="hartool-mcu-") as tmp:
        info = export_c(bundle, Path(tmp) / "lib")
        status(f"exported the C library ({info['weight_bytes']:,} B weights, {info['arena_bytes']:,} B arena); "
               f"building for {', '.join(targets)}")
        rows = [{**target_row(Path(tmp) / "lib" / "src", t, Path(tmp) / "work", windows), "arena_bytes":
                 info["arena_bytes"]} for t in targets]
    if as_json:
        emit_json({"bundle": str(bundle), "targets": rows})
        return
    click.echo(table(["target", "flash B", "text", "rodata", "data", "bss (arena)", "stack", "instr/window",
                      "ms @ 64 MHz", "= host"],
                     [[r["target"], f"{r['flash_bytes']:,}", f"{r['text']:,}", f"{r['rodata']:,}", r["data"],
                       f"{r['bss']:,} ({r['arena_bytes']:,})", r["stack_bytes"] or "-",
                       f"{r['instructions_per_window']:,.0f}" if r["instructions_per_window"] else "-",
                       f"{r['ms_at_clock']:.1f}" if r["ms_at_clock"] else "-",
                       {None: "build only", True: "yes", False: "NO"}[r["equal_to_host"]]] for r in rows]))
    status("flash, RAM: the library's sections from the cross compiler; stack: measured under qemu; instructions: "
           "counted by qemu; ms: instructions at 64 MHz and 1 instruction per cycle (an estimate, a lower bound)")
