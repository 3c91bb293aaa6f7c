"""Measure host decode throughput (samples/s) of the hartool wire codec for text lines and binary frames.

Usage: PYTHONPATH=toolkit python firmware_bridge/tools/bench_decode.py [--samples N]
Run it on the target (e.g. the Raspberry Pi) to check the streamer's budget of >= 20,000 samples/s.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

try:
    from hartool.wire import binary, frames, text
except ImportError:  # straight from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "toolkit"))
    from hartool.wire import binary, frames, text

SCALES = [frames.ACC_SCALE_G] * 3 + [frames.GYRO_SCALE_RAD_S] * 3


def _rate(make_decoder, stream: bytes, chunk: int, n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        dec = make_decoder()
        t0 = time.process_time()  # CPU time: stable when the machine is shared
        for i in range(0, len(stream), chunk):
            dec.feed(stream[i : i + chunk])
        best = min(best, time.process_time() - t0)
    return n / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000)
    args = parser.parse_args(argv)
    n = args.samples
    rows = np.round(np.random.default_rng(0).normal(0.0, 1.0, (n, 6)), 4)
    out = [f"# {platform.machine()} {platform.processor() or ''} python {platform.python_version()}"]
    for per_frame in (1, 10, 50):
        stream = b"".join(
            frames.encode_frame(frames.frame_from_values(rows[i : i + per_frame], i, 20 * i, SCALES))
            for i in range(0, n, per_frame)
        )
        for chunk in (64, 4096):
            rate = _rate(binary.BinaryDecoder, stream, chunk, n)
            out.append(f"binary {per_frame:3d} samples/frame, {chunk:5d}-byte reads: {rate:12,.0f} samples/s")
    text = b"".join(text.encode_text_line(r) for r in rows)
    for chunk in (64, 512, 4096):
        rate = _rate(lambda: text.TextDecoder(6, skip_first_line=False), text, chunk, n)
        out.append(f"text   6 values/line,      {chunk:5d}-byte reads: {rate:12,.0f} samples/s")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
