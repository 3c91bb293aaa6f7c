"""Is the default artifact `quantize` picks stable from run to run? (issue 13: the demo once picked a slower one)

Usage: .venv/bin/python benchmarks/artifact_choice.py BUNDLE [--runs 5] [--modes fp32,dynamic,int8]

Copies BUNDLE to a temporary folder and runs the real `hartool quantize COPY --formats tflite --modes MODES`
``--runs`` times in a row. Each run times every artifact of the bundle in the same interleaved rounds and
records the default (the fastest within 0.3 pp of the best validation accuracy); this script reads the manifest after
each run and reports every run's latencies and pick. Then `hartool benchmark COPY` (a fresh process per
artifact, 1,000 timed runs each) gives an independent ordering to compare the pick with. Writes
benchmarks/results/NAME (default artifact-choice.json) and prints the RESULTS.md section.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import hartool, md_table, save, stamp


def one_run(bundle: Path, modes: str) -> dict[str, Any]:
    _, took = hartool("quantize", str(bundle), "--formats", "tflite", "--modes", modes)
    m = json.loads((bundle / "manifest.json").read_text())
    return {"default": m["default_artifact"]["name"], "reason": m["default_artifact"]["reason"], "wall_s": took,
            "latency_us": {a["name"]: a["latency_us"] for a in m["artifacts"]},
            "accuracy": {a["name"]: a["accuracy"] for a in m["artifacts"]},
            "val_accuracy": {a["name"]: a.get("val_accuracy") for a in m["artifacts"]}}


def benchmark_order(bundle: Path, out: Path) -> dict[str, float]:
    """p50 latency per artifact from `hartool benchmark` (each artifact in its own process)."""
    hartool("benchmark", str(bundle), "--out", str(out), "--runs", "1000", "--backend", "litert")
    doc = json.loads(out.read_text())
    return {r["artifact"]: r["latency_us"]["p50"] for r in doc["results"]
            if r.get("backend") == "litert" and r.get("threads", 1) == 1}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--modes", default="fp32,dynamic,int8")
    ap.add_argument("--name", default="artifact-choice.json", help="File name of the raw JSON in benchmarks/results/.")
    args = ap.parse_args()
    doc = stamp(sys.argv) | {"bundle": str(args.bundle)}
    with tempfile.TemporaryDirectory(prefix="artifact-choice-") as tmp:
        copy = Path(tmp) / "bundle"
        shutil.copytree(args.bundle, copy)
        doc["runs"] = [one_run(copy, args.modes) for _ in range(args.runs)]
        doc["benchmark_p50_us"] = benchmark_order(copy, Path(tmp) / "bench.json")
    save(args.name, doc)
    names = sorted(doc["runs"][0]["latency_us"], key=lambda n: doc["runs"][0]["latency_us"][n])
    rows = [[i + 1, *[f"{r['latency_us'][n]:.1f}" for n in names], f"`{r['default']}`"]
            for i, r in enumerate(doc["runs"])]
    rows.append(["benchmark p50", *[f"{doc['benchmark_p50_us'].get(n, float('nan')):.1f}" for n in names], ""])
    print(f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n")
    print(md_table(["quantize run", *[f"{n} µs" for n in names], "default"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
