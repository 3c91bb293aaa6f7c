"""Stream a held-out subject through `hartool simulate` (a real pty) into `hartool stream`, and measure it.

Usage: .venv/bin/python benchmarks/stream.py [--bundle demo-out/bundles/cnn] [--artifact tflite-int8] [--subject 9]

Reports, for the RESULTS.md streaming section:
  * accuracy of the streamed windows vs the recording's labels, next to the offline accuracy of the same
    artifact on the same subject's test windows;
  * end-to-end latency (reader received the window's last bytes -> prediction line written) at 20x real
    time, where the host keeps up and no queue builds;
  * sustained ingest at --speed 0 (as fast as the device can write) for text and binary, with drops;
  * peak RSS of the `hartool stream` process (ru_maxrss from wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import md_table, save, stamp

from hartool.core.bundle import Bundle
from hartool.data import load_dataset, recording_for_subject
from hartool.data.evalset import bundle_eval_set
from hartool.demo import window_truth
from hartool.runtime.artifacts import load_bundle_predictor


def run_pair(bundle: Path, artifact: str, subject: int, speed: float, protocol: str, max_windows: int,
             spf: int = 1) -> dict:
    """One simulate -> stream run through a pty; returns the JSONL rows, summary and the stream's peak RSS."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    sim = subprocess.Popen([sys.executable, "-m", "hartool", "simulate", "--subject", str(subject), "--speed",
                            str(speed), "--protocol", protocol, "--samples-per-frame", str(spf)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        port = sim.stdout.readline().strip()
        summary_path = Path(f"/tmp/hartool-stream-summary-{os.getpid()}.json")
        t0 = time.perf_counter()
        stream = subprocess.Popen([sys.executable, "-m", "hartool", "stream", str(bundle), "--port", port,
                                   "--artifact", artifact, "--jsonl", "--max-windows", str(max_windows),
                                   "--protocol", protocol, "--summary-json", str(summary_path)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        out = stream.stdout.read()  # stderr is a few status lines: it cannot fill its pipe meanwhile
        err = stream.stderr.read()
        stream.wait(timeout=60)
        wall = time.perf_counter() - t0
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    if stream.returncode != 0:
        raise SystemExit(f"stream failed: {err[-2000:]}")
    rows = [json.loads(line) for line in out.splitlines()]
    summary = json.loads(summary_path.read_text())
    summary_path.unlink()
    return {"rows": rows, "summary": summary, "wall_s": wall, "stderr_tail": err.splitlines()[-3:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=Path("demo-out/bundles/cnn"))
    ap.add_argument("--artifact", default="tflite-int8")
    ap.add_argument("--subject", type=int, default=9)
    ap.add_argument("--only", default="", help="comma-separated run names (e.g. e2e_text_20x); default all")
    args = ap.parse_args()
    bundle = Bundle.load(args.bundle)
    doc = stamp(sys.argv) | {"bundle": str(args.bundle), "artifact": args.artifact, "subject": args.subject}

    # Offline: the same artifact on the same subject's (test) windows, as quantize evaluates.
    evalset = bundle_eval_set(bundle.manifest)
    mask = evalset.subject_test == args.subject
    _, pred = load_bundle_predictor(bundle, args.artifact)
    offline = float((pred.predict(evalset.x_test[mask]).argmax(1) == evalset.y_test[mask]).mean())
    doc["offline"] = {"windows": int(mask.sum()), "accuracy": offline}

    ds = load_dataset(bundle.manifest["dataset"]["name"])
    labels = np.concatenate([r.labels for r in recording_for_subject(ds, args.subject)])
    n_windows = (len(labels) - bundle.window) // bundle.stride + 1
    label_ids = [int(i) for i in bundle.manifest["label_ids"]]

    runs = {}
    for name, speed, protocol, spf in (("e2e_text_20x", 20, "text", 1), ("ingest_text_max", 0, "text", 1),
                                       ("ingest_binary_max", 0, "binary", 10)):
        if args.only and name not in args.only.split(","):
            continue
        r = run_pair(args.bundle, args.artifact, args.subject, speed, protocol, n_windows, spf)
        scored = [(row, window_truth(labels, row["end_sample"], bundle.window, label_ids)) for row in r["rows"]]
        scored = [(row, t) for row, t in scored if t is not None]
        acc = float(np.mean([bundle.labels.index(row["label"]) == t for row, t in scored])) if scored else None
        s = r["summary"]
        runs[name] = {"speed": speed, "protocol": protocol, "samples_per_frame": spf, "windows": s["windows"],
                      "samples": s["samples"], "scored_windows": len(scored), "accuracy": acc,
                      "dropped": s["dropped"], "bad_lines": s["bad_lines"], "bad_frames": s["bad_frames"],
                      "duration_s": s["duration_s"], "samples_per_s": s["samples"] / s["duration_s"],
                      "inference_us": s["inference_us"], "e2e_us": s["e2e_us"],
                      "peak_rss_mb": s["peak_rss_mb"]}
        print(f"{name}: {runs[name]['samples_per_s']:.0f} samples/s, acc {acc}, e2e p99 "
              f"{s['e2e_us'].get('p99')}", file=sys.stderr)
    doc["runs"] = runs
    save("stream.json", doc)
    print(render(doc))
    return 0


def render(doc: dict) -> str:
    rows = []
    for name, r in doc["runs"].items():
        rows.append([name, r["protocol"], "max" if r["speed"] == 0 else f"{r['speed']}x", r["windows"],
                     f"{100 * r['accuracy']:.2f} % ({r['scored_windows']})" if r["accuracy"] is not None else "-",
                     f"{r['samples_per_s']:,.0f}", r["dropped"], f"{r['inference_us'].get('p99', 0):.0f}",
                     f"{r['e2e_us'].get('p50', 0):.0f} / {r['e2e_us'].get('p99', 0):.0f}",
                     f"{r['peak_rss_mb']:.0f}"])
    off = doc["offline"]
    return "\n".join([
        f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n",
        f"Offline accuracy of {doc['artifact']} on subject {doc['subject']}'s {off['windows']} test windows: "
        f"**{100 * off['accuracy']:.2f} %**\n",
        md_table(["run", "protocol", "speed", "windows", "stream accuracy (scored windows)", "samples/s",
                  "dropped", "inference p99 us", "e2e p50 / p99 us", "peak RSS MB"], rows)])


if __name__ == "__main__":
    sys.exit(main())
