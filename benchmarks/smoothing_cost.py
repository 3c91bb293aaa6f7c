"""Per-window CPU cost of each smoothing method's ``update`` (what `hartool stream` adds after the interpreter).

Usage: .venv/bin/python benchmarks/smoothing_cost.py [--windows 2000] [--rounds 10]

Every method runs over the same random 6-class probability sequence, in interleaved rounds (rotating order),
so machine noise falls on all of them alike; the median over rounds of the mean µs per window is reported.
Writes benchmarks/results/smoothing_cost.json; prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from _common import md_table, save, stamp

from hartool.runtime.smoothing import CAUSAL_SMOOTHING, DEFAULT_SMOOTHING, make_smoother

METHODS = ("none", "mean:4", "vote:3", "hysteresis:margin=0.6,windows=1", CAUSAL_SMOOTHING, DEFAULT_SMOOTHING)


def one_round(method: str, probs: np.ndarray) -> float:
    """Mean µs per window of a fresh smoother over ``probs`` (its owed windows flushed at the end)."""
    sm = make_smoother(method, probs.shape[1])
    t0 = time.perf_counter_ns()
    for p in probs:
        sm.update(p)
    sm.flush()
    return (time.perf_counter_ns() - t0) / 1000.0 / len(probs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    probs = np.random.default_rng(0).dirichlet(np.full(6, 0.5), size=args.windows).astype(np.float32)
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for r in range(args.rounds):
        for method in METHODS[r % len(METHODS):] + METHODS[: r % len(METHODS)]:
            times[method].append(one_round(method, probs))
    rows = {m: statistics.median(t) for m, t in times.items()}
    save("smoothing_cost.json", stamp(sys.argv) | {"windows": args.windows, "rounds": args.rounds,
                                                   "us_per_window": rows, "all_rounds": times})
    print(md_table(["method", "µs per window (median of rounds)"], [[f"`{m}`", f"{v:.1f}"] for m, v in rows.items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
