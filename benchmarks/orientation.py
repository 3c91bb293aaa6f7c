"""Orientation benchmark (issue 13): stream whole test recordings as worn and turned by a random rotation.

Each of the 9 test subjects' whole recordings (unlabelled stretches and transitions included) is pushed
through `hartool stream`'s StreamClassifier (runtime/classifier.py, which applies the bundle's input
transform: core.orientation's calibrator for ``--orientation free``; no smoothing). Run twice: as recorded, and with every recording turned by its own random fixed 3-D
rotation (acc and gyro together, seeded). Scored on windows whose samples all carry one of the bundle's
activities. ``--turn vertical`` turns each recording only about the upright axis instead (a random angle):
a phone clipped to the belt facing another way, which a ``fixed`` model trained with yaw augmentation covers.

    ../.venv/bin/python orientation.py BUNDLE [BUNDLE ...] [--artifact tflite-int8] [--turn full|vertical]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hartool.core.bundle import Bundle
from hartool.core.orientation import orientation_mode, rotate
from hartool.data import load_dataset
from hartool.data.recordings import UCI_HAR_TEST_SUBJECTS
from hartool.runtime.artifacts import load_bundle_predictor


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3-D rotation (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def vertical_turn(rng: np.random.Generator) -> np.ndarray:
    """A turn by a uniformly random angle about HAPT's upright axis (the device's vertical while standing)."""
    from hartool.core.orientation import REFERENCE_GRAVITY
    from hartool.train.augment import axis_angle_matrices

    return axis_angle_matrices(np.asarray([REFERENCE_GRAVITY], dtype=np.float64), rng.uniform(-np.pi, np.pi, 1))[0]


def stream_classifier(bundle: Bundle, artifact: str | None, values: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """(correct, scored) windows of one recording pushed through the stream's own StreamClassifier."""
    from hartool.runtime.classifier import ClassifierOptions, StreamClassifier

    clf = StreamClassifier(bundle, ClassifierOptions(artifact=artifact, smooth="none"))
    m = bundle.manifest
    label_ids = np.asarray(m["label_ids"])
    correct = scored = 0
    for p in clf.push(None, values.astype(np.float32)):
        lab = labels[p.end_sample - int(m["window"]):p.end_sample]
        if np.all(lab == lab[0]) and lab[0] in label_ids:
            scored += 1
            correct += int(label_ids[m["labels"].index(p.raw_label)] == lab[0])
    return correct, scored


def evaluate(bundle_dir: str, artifact: str | None, seed: int, turn: str = "full") -> dict:
    bundle = Bundle.load(bundle_dir)
    entry, pred = load_bundle_predictor(bundle, artifact)
    ds = load_dataset(bundle.manifest["dataset"]["name"])
    recs = [r for r in ds.recordings if r.subject in UCI_HAR_TEST_SUBJECTS]
    rng = np.random.default_rng(seed)
    out: dict = {"bundle": str(bundle_dir), "artifact": entry["name"],
                 "orientation": orientation_mode(bundle.manifest),
                 "recordings": len(recs), "turn": turn}
    out["path"] = "StreamClassifier"
    for case in ("as_worn", "rotated"):
        correct = scored = 0
        for r in recs:
            rot = np.eye(3)
            if case == "rotated":
                rot = random_rotation(rng) if turn == "full" else vertical_turn(rng)
            turned = rotate(r.values, rot)
            c, s = stream_classifier(bundle, artifact, turned, r.labels)
            correct, scored = correct + c, scored + s
        out[case] = {"accuracy": correct / max(scored, 1), "windows": scored}
    out["drop_pp"] = round(100 * (out["as_worn"]["accuracy"] - out["rotated"]["accuracy"]), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="+")
    ap.add_argument("--artifact", default="tflite-int8")
    ap.add_argument("--seed", type=int, default=0, help="Seeds the rotations (one per recording).")
    ap.add_argument("--turn", choices=["full", "vertical"], default="full",
                    help="full: a random 3-D rotation per recording; vertical: a random turn about the upright axis.")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    for b in args.bundles:
        row = evaluate(b, args.artifact, args.seed, args.turn)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json:
        from hartool.bench.machine import machine_info, machine_summary

        args.json.write_text(json.dumps({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                         "machine": machine_summary(machine_info()),
                                         "seed": args.seed, "rows": rows}, indent=2))
    print("done", file=sys.stderr)


if __name__ == "__main__":
    main()
