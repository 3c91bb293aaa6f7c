"""Model search and final numbers for the default CNN (issue 13).

``search``: short trainings of candidate recipes, scored on VALIDATION subjects only (6 of the 21
training subjects, ``--val-fraction 0.3``); the test subjects are never looked at here.
``int8-val``: a searched bundle's Keras model against its quantized artifact on the same VALIDATION windows
(accuracy of both, top-1 agreement), after `hartool quantize BUNDLE --formats tflite --modes fp32,int8`.
``final``: the default `hartool train --arch cnn` for seeds 0, 1, 2 through the CLI, then `hartool
quantize`, the int8 size/accuracy, and LiteRT latency against ``baseline_cnn_int8.tflite`` (today's default
CNN int8 artifact) in the same run.

    ../.venv/bin/python models.py search --out /tmp/search --configs hybrid,small --epochs 15
    ../.venv/bin/python models.py int8-val /tmp/search/hybrid2-clip4
    ../.venv/bin/python models.py final --out /tmp/final --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BASELINE = HERE / "baseline_cnn_int8.tflite"

# Candidate recipes: TrainOptions overrides.
CONFIGS: dict[str, dict] = {
    "small": {"variant": "small"},
    "hybrid": {"variant": "hybrid"},
    "hybrid-plain": {"variant": "hybrid", "label_smoothing": 0.0, "aug_scale": 0.0},
    "hybrid-tilt10": {"variant": "hybrid", "aug_tilt_deg": 10.0},
    "hybrid-tilt5": {"variant": "hybrid", "aug_tilt_deg": 5.0},
    "v1": {"variant": "v1"},
    "free": {"variant": "hybrid", "orientation": "free", "aug_tilt_deg": 5.0},
    "hybrid-es15": {"variant": "hybrid", "patience": 15},
    "hybrid-full": {"variant": "hybrid", "patience": 1000},
    "hybrid-yaw45": {"variant": "hybrid", "patience": 1000, "aug_yaw_deg": 45.0},
    "hybrid-yaw90": {"variant": "hybrid", "patience": 1000, "aug_yaw_deg": 90.0},
    "hybrid-yaw180": {"variant": "hybrid", "patience": 1000, "aug_yaw_deg": 180.0},
    "hybrid2-yaw180": {"variant": "hybrid2", "aug_yaw_deg": 180.0, "input_clip": 0.0},
    "hybrid-clip4": {"variant": "hybrid", "aug_yaw_deg": 180.0, "input_clip": 4.0},
    "hybrid2-clip4": {"variant": "hybrid2", "aug_yaw_deg": 180.0, "input_clip": 4.0},
    "lstm": {"arch": "lstm"},
    "lstm-tilt5": {"arch": "lstm", "aug_tilt_deg": 5.0},
}


def search(args: argparse.Namespace) -> None:
    from hartool.train.fit import TrainOptions, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.configs.split(","):
        over = dict(CONFIGS[name])
        opts = TrainOptions(out=out / name, seed=args.seed, val_fraction=args.val_fraction, epochs=args.epochs,
                            verbose=2, **over)
        with contextlib.redirect_stdout(sys.stderr):
            res = train(opts)
        val = res.metrics["val"]
        row = {"config": name, **over, "epochs": args.epochs, "seed": args.seed, "val_fraction": args.val_fraction,
               "val_accuracy": round(val["accuracy"], 4), "val_macro_f1": round(val["macro_f1"], 4),
               "train_time_s": round(res.train_time_s, 1), "n_params": res.n_params,
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        print(json.dumps(row), flush=True)
        with (out / "search.jsonl").open("a") as fh:
            fh.write(json.dumps(row) + "\n")


def int8_val(args: argparse.Namespace) -> None:
    import keras

    from hartool.core.bundle import Bundle
    from hartool.core.preprocess import preprocess
    from hartool.runtime.artifacts import load_bundle_predictor
    from hartool.train.fit import TrainOptions, load_training_data

    bundle = Bundle.load(args.bundle)
    m = bundle.manifest
    t = m["training"]
    # The bundle's own split: the same seed and validation share as its search run.
    opts = TrainOptions(**{k: t[k] for k in ("arch", "seed", "val_fraction", "window", "stride", "orientation")},
                        train_stride=t["train_stride"])
    val = load_training_data(opts).val
    x = preprocess(val.x, m["preprocessing"])
    keras_pred = keras.models.load_model(Path(args.bundle) / "model.keras").predict(x, batch_size=512,
                                                                                   verbose=0).argmax(1)
    _, pred = load_bundle_predictor(bundle, args.artifact, backend="litert")
    q_pred = pred.predict(x).argmax(1)
    row = {"bundle": str(args.bundle), "artifact": args.artifact,
           "val_keras": round(float((keras_pred == val.y).mean()), 4),
           "val_quantized": round(float((q_pred == val.y).mean()), 4),
           "agreement": round(float((keras_pred == q_pred).mean()), 4)}
    print(json.dumps(row), flush=True)


def _hartool(*args: str) -> str:
    proc = subprocess.run([str(REPO / ".venv/bin/hartool"), *args], capture_output=True, text=True, check=True)
    return proc.stdout


def _latency_us(path: Path, runs: int = 2000) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    x = np.random.default_rng(0).normal(size=inp["shape"]).astype(inp["dtype"])
    times = np.empty(runs)
    for i in range(runs + 100):
        interp.set_tensor(inp["index"], x)
        t0 = time.perf_counter_ns()
        interp.invoke()
        if i >= 100:
            times[i - 100] = time.perf_counter_ns() - t0
    return float(np.median(times) / 1000.0)


def latency_pair(candidate: Path, rounds: int = 5) -> dict:
    """Median invoke() time of candidate and baseline, interleaved rounds (same run, same load)."""
    cand, base = [], []
    for _ in range(rounds):
        cand.append(_latency_us(candidate))
        base.append(_latency_us(BASELINE))
    c, b = float(np.median(cand)), float(np.median(base))
    return {"candidate_us": round(c, 2), "baseline_us": round(b, 2), "ratio": round(c / b, 3)}


def final(args: argparse.Namespace) -> None:
    out = Path(args.out)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        bundle = out / f"cnn-seed{seed}"
        if not (bundle / "manifest.json").exists() or args.retrain:
            t0 = time.perf_counter()
            _hartool("train", "--arch", "cnn", "--out", str(bundle), "--seed", str(seed), "--quiet", *args.train_args)
            print(f"seed {seed}: trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        _hartool("quantize", str(bundle), "--formats", "tflite", "--modes", "fp32,int8")
        m = json.loads((bundle / "manifest.json").read_text())
        int8 = next(a for a in m["artifacts"] if a.get("name") == "tflite-int8")
        row = {"seed": seed, "val_accuracy": m["metrics"]["val"]["accuracy"], "test_accuracy": m["metrics"]["test"]["accuracy"],
               "int8_accuracy": int8.get("accuracy"), "int8_bytes": int8.get("bytes"),
               "train_time_s": m["training"]["train_time_s"], "n_params": m["training"]["n_params"],
               **latency_pair(bundle / int8["file"])}
        print(json.dumps(row), flush=True)
        rows.append(row)
    from hartool.bench.machine import machine_info, machine_summary

    summary = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine_summary(machine_info()), "rows": rows,
               "mean_test": float(np.mean([r["test_accuracy"] for r in rows])),
               "mean_int8": float(np.mean([r["int8_accuracy"] for r in rows]))}
    (out / "final.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("search")
    s.add_argument("--out", required=True)
    s.add_argument("--configs", default="hybrid,small")
    s.add_argument("--epochs", type=int, default=15)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--val-fraction", type=float, default=0.3)
    f = sub.add_parser("final")
    f.add_argument("--out", required=True)
    f.add_argument("--seeds", default="0,1,2")
    f.add_argument("--retrain", action="store_true")
    f.add_argument("--train-args", nargs="*", default=[])
    q = sub.add_parser("int8-val")
    q.add_argument("bundle")
    q.add_argument("--artifact", default="tflite-int8")
    args = ap.parse_args()
    {"search": search, "final": final, "int8-val": int8_val}[args.cmd](args)


if __name__ == "__main__":
    main()
