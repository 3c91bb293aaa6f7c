"""Does a seeded `hartool train` give the same model on another machine? Runs one short training under the
conditions that differ between machines (how many CPUs, which instruction set oneDNN may use), with
hartool's fixed TensorFlow settings and without them, and compares each run's test-window probabilities
byte for byte with the first run's. Each run's sha256 of those bytes is recorded too: the same command on
another machine must print the same digests (compare them with the ones in results/train_repro.json).

Usage: cd benchmarks && ../.venv/bin/python train_repro.py [--epochs 2] [--max-windows 2000]

"Without" sets TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS to 0 (TensorFlow's own default: one thread per
core) and ONEDNN_MAX_CPU_ISA to ALL (no cap), which is how hartool trained before it fixed them. An AVX-only
or a wider (AVX-512) CPU is emulated by ONEDNN_MAX_CPU_ISA=AVX: this machine cannot emulate a wider one.
Also times the same training at 1, 2 and 4 threads on every CPU, in rotating order.
Writes results/train_repro.json; prints markdown tables.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, md_table, save, stamp

from hartool.train.tflog import TF_ENV_KEYS

WITHOUT = {"TF_NUM_INTRAOP_THREADS": "0", "TF_NUM_INTEROP_THREADS": "0", "ONEDNN_MAX_CPU_ISA": "ALL"}
AVX_ONLY = {"ONEDNN_MAX_CPU_ISA": "AVX"}


def train(out: Path, args: argparse.Namespace, env: dict[str, str], cpus: list[int]) -> tuple[bytes, float]:
    """One `hartool train` on these CPUs with these extra variables: (test probabilities' bytes, wall s)."""
    base = {k: v for k, v in os.environ.items() if k not in TF_ENV_KEYS}
    cmd = [str(REPO / ".venv" / "bin" / "hartool"), "train", "--arch", "cnn", "--seed", "0", "--quiet",
           "--epochs", str(args.epochs), "--max-windows", str(args.max_windows), "--out", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=base | env, check=True, capture_output=True, timeout=3600,
                   preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    return (out / "keras_test_probs.npy").read_bytes(), time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-windows", type=int, default=2000)
    ap.add_argument("--timing-rounds", type=int, default=2)
    args = ap.parse_args()
    every = sorted(os.sched_getaffinity(0))
    cases: list[tuple[str, str, dict[str, str], list[int]]] = [
        ("hartool's settings", f"{len(every)} CPUs", {}, every),
        ("hartool's settings", "1 CPU", {}, every[:1]),
        ("hartool's settings", f"{len(every)} CPUs, oneDNN capped at AVX", AVX_ONLY, every),
        ("without them", f"{len(every)} CPUs", WITHOUT, every),
        ("without them", "1 CPU", WITHOUT, every[:1]),
        ("without them", f"{len(every)} CPUs, oneDNN capped at AVX", WITHOUT | AVX_ONLY, every),
    ]
    rows: list[dict[str, Any]] = []
    timing: dict[int, list[float]] = {1: [], 2: [], 4: []}
    with tempfile.TemporaryDirectory(prefix="train-repro-") as tmp:
        for i, (settings, machine, env, cpus) in enumerate(cases):
            probs, wall = train(Path(tmp) / f"case{i}", args, env, cpus)
            rows.append({"settings": settings, "machine": machine, "env": env, "cpus": len(cpus), "wall_s": wall,
                         "same_as_first": probs == rows[0]["probs"] if rows else True, "probs": probs})
        for r in range(args.timing_rounds):
            order = [1, 2, 4][r % 3:] + [1, 2, 4][:r % 3]
            for threads in order:
                env = {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads)}
                timing[threads].append(train(Path(tmp) / f"t{threads}_{r}", args, env, every)[1])
    for row in rows:
        row["probs_sha256"] = hashlib.sha256(row.pop("probs")).hexdigest()
    doc = stamp(sys.argv) | {"epochs": args.epochs, "max_windows": args.max_windows, "cases": rows,
                             "threads_wall_s": timing}
    save("train_repro.json", doc)
    print(f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n")
    print(md_table(["TensorFlow settings", "machine (emulated)", "test probabilities equal to the first row's",
                    "their sha256 (first 16)"],
                   [[r["settings"], r["machine"], "yes" if r["same_as_first"] else "**no**", r["probs_sha256"][:16]]
                    for r in rows]))
    print()
    print(md_table(["intra/inter-op threads", f"wall s per training ({args.timing_rounds} rounds, {len(every)} CPUs)"],
                   [[t, " / ".join(f"{s:.1f}" for s in v)] for t, v in timing.items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
