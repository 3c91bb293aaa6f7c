"""`hartool quantize`: post-training quantization to TFLite and ONNX, every artifact verified."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from .common import emit_json, pct, status, table


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--formats", default="tflite,onnx", show_default=True, help="Comma list: tflite, onnx.")
@click.option("--modes", default="fp32,fp16,dynamic,int8,int16x8", show_default=True,
              help="Comma list: fp32, fp16, dynamic, int8 (full integer), int16x8. ONNX makes fp32, dynamic, int8 (QDQ).")
@click.option("--calibration-windows", type=int, default=300, show_default=True,
              help="Training windows (seeded) used to calibrate integer models.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--timeout", "timeout_s", type=float, default=900, show_default=True, help="Seconds per conversion.")
@click.option("--tflite-runtime-python", type=click.Path(exists=True, dir_okay=False), default=None,
              envvar="HARTOOL_TFLITE_RUNTIME_PYTHON",
              help="A python with tflite-runtime 2.14 installed, to check each .tflite loads there.")
@click.option("--integer-io", is_flag=True,
              help="int8/int16x8 TFLite models take and return integer tensors (for tflite-micro); by default "
                   "they keep float32 edges and quantize inside the interpreter.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
def quantize(bundle: Path, formats: str, modes: str, calibration_windows: int, seed: int, timeout_s: float,
             tflite_runtime_python: str | None, integer_io: bool, as_json: bool) -> None:
    """Convert BUNDLE's model to TFLite/ONNX artifacts and evaluate each through LiteRT / onnxruntime.

    Every conversion runs in a child process: a converter crash (e.g. full-int8 LSTM) becomes a row
    in the table and the other artifacts are still written.

    \b
    Example:
      hartool quantize bundles/cnn
      hartool quantize bundles/lstm --formats tflite --modes fp32,dynamic,int16x8 --json
    """
    from ..export.quantize import (
        FORMATS,
        TFLITE_MODES,
        QuantizeOptions,
        parse_list,
        quantize_bundle,
        raise_if_all_failed,
    )

    opts = QuantizeOptions(formats=parse_list(formats, FORMATS, "format"),
                           modes=parse_list(modes, TFLITE_MODES, "mode"),
                           calibration_windows=calibration_windows, seed=seed, timeout_s=timeout_s,
                           tflite_runtime_python=tflite_runtime_python, integer_io=integer_io)
    results = quantize_bundle(bundle, opts, progress=status)
    from ..core.bundle import Bundle

    default = Bundle.load(bundle).manifest.get("default_artifact")
    if default:
        status(f"default artifact (what stream and benchmark run): {default['name']}: {default['reason']}")
    if as_json:
        emit_json([asdict(r) for r in results])
    else:
        rows = []
        for r in results:
            if r.status != "ok":
                rows.append([r.name, r.format, r.mode, "-", "-", "-", "-", "-", "-", f"FAILED: {r.error}"])
                continue
            rows.append([r.name, r.format, r.mode, f"{r.bytes:,}",
                         "-" if r.size_vs_fp32 is None else f"{100 * r.size_vs_fp32:.0f}%",
                         pct(r.accuracy), "-" if r.delta_pp is None else f"{r.delta_pp:+.2f} pp",
                         pct(r.agreement), f"{r.latency_us:.1f} us",
                         f"{r.input_dtype}->{r.output_dtype}" + (f"; tflite-runtime {r.tflite_runtime}"
                                                                  if r.tflite_runtime else "")])
        click.echo(table(["artifact", "format", "mode", "bytes", "vs fp32", "accuracy", "Δ vs keras", "agree",
                          "latency", "io / notes"], rows))
    raise_if_all_failed(results)
