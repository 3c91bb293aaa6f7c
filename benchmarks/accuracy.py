"""Train every architecture with default settings, quantize each, and report accuracy, size and training time.

Usage: .venv/bin/python benchmarks/accuracy.py [--out benchmarks/out] [--archs cnn,lstm,cnn-lstm,bilstm]
Writes benchmarks/results/accuracy.json and prints the markdown that goes into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import hartool, md_table, save, stamp

TFLITE_MODES = "fp32,fp16,dynamic,int8,int16x8"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    ap.add_argument("--archs", default="cnn,lstm,cnn-lstm,bilstm")
    ap.add_argument("--skip-train", action="store_true", help="Reuse bundles already in --out.")
    ap.add_argument("--name", default="accuracy", help="Results file stem under benchmarks/results/.")
    ap.add_argument("--train-args", default="", help="Extra `hartool train` arguments, e.g. '--epochs 10'.")
    args = ap.parse_args()
    doc = stamp(sys.argv) | {"archs": {}}
    for arch in args.archs.split(","):
        bundle = args.out / arch
        if not args.skip_train:
            proc, took = hartool("train", "--arch", arch, "--out", str(bundle), "--quiet", "--json",
                                 *args.train_args.split())
            trained = json.loads(proc.stdout)
            trained["wall_s"] = round(took, 1)
        else:
            manifest = json.loads((bundle / "manifest.json").read_text())
            trained = {**manifest["training"], "metrics": manifest["metrics"]}
        proc, qtook = hartool("quantize", str(bundle), "--modes", TFLITE_MODES, "--json")
        doc["archs"][arch] = {"train": trained, "quantize": json.loads(proc.stdout), "quantize_wall_s": round(qtook, 1)}
        save(f"{args.name}.json", doc)
        print(f"{arch}: done", file=sys.stderr)
    print(render(doc))
    return 0


def render(doc: dict) -> str:
    rows = []
    for arch, d in doc["archs"].items():
        t = d["train"]
        m = t.get("metrics", {}).get("test", {})
        rows.append([arch, f"{100 * m.get('accuracy', 0):.2f} %", f"{100 * m.get('macro_f1', 0):.2f} %",
                     t.get("epochs_run"), f"{t.get('train_time_s', 0):.0f} s", f"{t.get('n_params', 0):,}"])
    out = [f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n",
           md_table(["arch", "test accuracy", "macro-F1", "epochs", "training time", "params"], rows), ""]
    arows = []
    for arch, d in doc["archs"].items():
        for r in d["quantize"]:
            if r["status"] != "ok":
                arows.append([arch, r["name"], "-", "-", "-", "-", "-", f"failed: {r['error']}"])
                continue
            arows.append([arch, r["name"], f"{r['bytes']:,}",
                          f"{100 * r['size_vs_fp32']:.0f} %" if r.get("size_vs_fp32") else "-",
                          f"{100 * r['accuracy']:.2f} %", f"{r['delta_pp']:+.2f}",
                          f"{100 * r['agreement']:.2f} %" if r.get("agreement") is not None else "-",
                          f"{r['input_dtype']}; {r['latency_us']:.1f} us"])
    out.append(md_table(["arch", "artifact", "bytes", "vs fp32", "accuracy", "Δ pp vs Keras", "agreement",
                         "input; median latency"], arows))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
