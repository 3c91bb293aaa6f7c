"""What each window costs `hartool stream`'s own classifier, for two bundles timed in one run (issue 25 latency).

Usage: .venv/bin/python benchmarks/stream_cost.py --bundle /work/bundles/cnn --bundle /work/bundles/free
       [--artifact tflite-int8] [--subject 9] [--rounds 6] [--name stream_cost.json]

Every bundle gets a fresh `StreamClassifier` per round (no smoothing unless `--smooth`, so the per-hop figure is window assembly,
the input transform with the calibrator of a `--orientation free` bundle, and the interpreter). The subject's
recordings are pushed one hop (the bundle's stride) at a time, as a live stream arrives. Two figures per window:
the interpreter alone (``WindowPrediction.inference_us``) and the whole `push` call that completes the window.
The rounds alternate the order of the bundles, so machine load falls on all of them alike. Reported: the median
over rounds of each round's median and p99, and the ratios to the first bundle. Writes
benchmarks/results/NAME and prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import md_table, save, stamp

from hartool.core.bundle import Bundle
from hartool.core.orientation import orientation_mode
from hartool.data import load_dataset, recording_for_subject
from hartool.runtime.classifier import ClassifierOptions, StreamClassifier


def one_round(bundle: Bundle, artifact: str | None, values: np.ndarray, smooth: str = "none") -> dict[str, Any]:
    """Median and p99 (µs) of the interpreter and of the whole per-hop push, over one pass of ``values``."""
    clf = StreamClassifier(bundle, ClassifierOptions(artifact=artifact, smooth=smooth))
    interp, hop = [], []
    for start in range(0, len(values), bundle.stride):
        t0 = time.perf_counter_ns()
        preds = clf.push(None, values[start:start + bundle.stride])
        t1 = time.perf_counter_ns()
        if preds:  # a hop that completes a window (the first few only fill the buffer)
            hop.append((t1 - t0) / 1000.0)
            interp += [p.inference_us for p in preds]
    return {"interp_p50": float(np.median(interp)), "interp_p99": float(np.percentile(interp, 99)),
            "hop_p50": float(np.median(hop)), "hop_p99": float(np.percentile(hop, 99)), "windows": len(interp),
            "artifact": clf.entry["name"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, action="append", required=True, help="Repeat; the first is the baseline.")
    ap.add_argument("--artifact", default=None, help="Artifact of every bundle (default: what `stream` picks).")
    ap.add_argument("--subject", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--smooth", default="none", help="Smoothing of every bundle's stream (default: none).")
    ap.add_argument("--name", default="stream_cost.json")
    args = ap.parse_args()
    bundles = [Bundle.load(p) for p in args.bundle]
    ds = load_dataset(bundles[0].manifest["dataset"]["name"])
    values = np.concatenate([r.values for r in recording_for_subject(ds, args.subject)]).astype(np.float32)
    rounds: list[list[dict[str, Any]]] = [[] for _ in bundles]
    for r in range(args.rounds):
        order = list(range(len(bundles)))[:: 1 if r % 2 == 0 else -1]
        for i in order:
            rounds[i].append(one_round(bundles[i], args.artifact, values, args.smooth))
    keys = ("interp_p50", "interp_p99", "hop_p50", "hop_p99")
    summary = [{k: float(np.median([x[k] for x in rs])) for k in keys} | {"artifact": rs[0]["artifact"],
               "windows": rs[0]["windows"], "bundle": str(p), "orientation": orientation_mode(b.manifest)}
               for rs, p, b in zip(rounds, args.bundle, bundles, strict=True)]
    doc = stamp(sys.argv) | {"subject": args.subject, "rounds": args.rounds, "bundles": summary, "raw": rounds}
    save(args.name, doc)
    base = summary[0]
    rows = [[s["bundle"], s["orientation"], s["artifact"], s["windows"]]
            + [f"{s[k]:.1f} ({s[k] / base[k]:.2f}x)" for k in keys] for s in summary]
    print(f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n")
    print(md_table(["bundle", "orientation", "artifact", "windows", "interpreter p50 µs", "interpreter p99 µs",
                    "whole window p50 µs", "whole window p99 µs"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
