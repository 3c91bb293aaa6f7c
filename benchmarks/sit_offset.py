"""Would moving the sitting/standing boundary help the people whose sitting the model calls standing (issue 25)?

Usage: cd benchmarks && ../.venv/bin/python sit_offset.py BUNDLE [BUNDLE ...] [--name sit_offset.json]

The smoothing goal (every test subject within 1 pp of no smoothing, at <= 1.5x the true change rate) and the
no-ritual goal at protocol seed 1 are missed on subjects whose sitting the default CNN mostly calls standing;
at the window level the model errs that way (seed 0's test confusion: 85 sitting windows called standing, 14
the other way). A log-offset ``d`` added to the SITTING class (probabilities times exp(d), renormalised) is
the cheapest remedy and could be baked into the last layer's bias. ``d`` is chosen on each bundle's
validation subjects only (their whole recordings, streamed as `hartool stream` cuts them, without smoothing:
the highest window accuracy, the smallest |d| among ties), from -1 to 3 in steps of 0.25; the test rows are
computed for d = 0 and the chosen ``d``: accuracy with and without the default smoother, its change ratio,
and every test subject's cost of smoothing.

Writes benchmarks/results/NAME and prints markdown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _common import md_table, save, stamp
from timeline import PREVIOUS_DEFAULT, evaluate, load_streams

OFFSETS = tuple(float(d) for d in np.round(np.arange(-1.0, 3.01, 0.25), 2))
Streams = dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]


def shifted(data: Streams, cls: int, d: float) -> Streams:
    """Every subject's probabilities with class ``cls`` multiplied by exp(d) and renormalised."""
    out = {}
    for s, (p, t, held) in data.items():
        q = p.astype(np.float64)
        q[:, cls] *= np.exp(d)
        out[s] = ((q / q.sum(1, keepdims=True)).astype(np.float32), t, held)
    return out


def test_row(data: Streams, stride_s: float) -> dict[str, Any]:
    none, smooth = evaluate("none", data, stride_s), evaluate(PREVIOUS_DEFAULT, data, stride_s)
    cost = {s: smooth["subject_accuracy"][s] - a for s, a in none["subject_accuracy"].items()}
    return {"accuracy": none["window_accuracy"], "smoothed": smooth["window_accuracy"],
            "change_ratio": smooth["change_ratio"], "subject_accuracy": none["subject_accuracy"],
            "smoothing_cost": cost, "worst_cost": min(cost.values())}


def one_bundle(path: Path) -> dict[str, Any]:
    st = load_streams(path, None, select_on="val")
    cls = [str(x) for x in st["bundle"].manifest["labels"]].index("SITTING")
    val = {d: evaluate("none", shifted(st["val"], cls, d), st["stride_s"])["window_accuracy"] for d in OFFSETS}
    best = max(val.values())
    chosen = min((d for d, a in val.items() if a >= best - 1e-12), key=abs)
    return {"bundle": str(path), "artifact": st["artifact"], "val_subjects": st["val_ids"], "val_accuracy": val,
            "chosen": chosen, "test": {str(d): test_row(shifted(st["test"], cls, d), st["stride_s"])
                                       for d in dict.fromkeys((0.0, chosen))}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", type=Path, nargs="+")
    ap.add_argument("--name", default="sit_offset.json")
    args = ap.parse_args()
    rows = [one_bundle(p) for p in args.bundles]
    doc = stamp(sys.argv) | {"smoothing": PREVIOUS_DEFAULT, "offsets": list(OFFSETS), "bundles": rows}
    save(args.name, doc)
    print(f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n")
    table = []
    for r in rows:
        for d, t in r["test"].items():
            table.append([Path(r["bundle"]).name, ", ".join(map(str, r["val_subjects"])), d,
                          f"{100 * r['val_accuracy'][float(d)]:.2f} %", f"{100 * t['accuracy']:.2f} %",
                          f"{100 * t['smoothed']:.2f} %", f"{t['change_ratio']:.2f}x",
                          f"{100 * t['worst_cost']:+.2f} pp",
                          sum(c < -0.01 for c in t["smoothing_cost"].values())])
    print(md_table(["bundle", "val subjects", "d (SITTING)", "validation, no smoothing", "test, no smoothing",
                    "test, default smoother", "change ratio", "worst subject's smoothing cost",
                    "subjects losing > 1 pp"], table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
