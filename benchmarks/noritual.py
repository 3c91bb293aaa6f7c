"""No-ritual benchmark (issue 25): streams started the way users start them, worn any way, re-attached halfway.

Each recording of the chosen subjects (``--subjects test``: UCI's 9 test subjects, 19 recordings; ``val``: the
bundle's own validation subjects, for choosing thresholds; several fold bundles, each with its own validation
subjects, pool the people no model trained on, window by window) is cut to begin at a seeded random sitting, lying
or walking segment (never the standing the HAPT protocol starts with) and streamed through `hartool stream`'s
own StreamClassifier (runtime/classifier.py, grid samples one hop at a time; no smoothing unless ``--smooth``)
three ways:

- ``as_worn``: the recording as recorded;
- ``turned``: turned by one seeded random 3-D rotation (acc and gyro together);
- ``reattached``: turned by one random rotation for the first half of its samples and another for the rest.

A window counts as calibrated when the stream's calibrator held an upright reference after classifying it
(``StreamClassifier.transform.calibrator.calibrated``; fixed bundles never are). Reported per case: accuracy of the
calibrated windows and their share of all scored windows (coverage), accuracy of the uncalibrated windows and
of all windows, seconds from the stream's start to the first calibrated window, and seconds from the
re-attach to the first calibrated window whose upright direction is right again (within ``--relock-deg`` of
where the as-worn stream's final calibration puts it). Scored: windows whose samples all carry one of the
bundle's activities.

With ``--smooth SPEC`` (e.g. ``default``: the smoother `hartool stream` runs unless told otherwise) a window is
scored on the label a user sees (smoothed, shown ``lag`` windows later), and ``calibrated`` is the window's own
flag as the JSONL row carries it (the calibrator's state when the window was classified, as without smoothing);
the upright's error for the re-lock time is read when the label is shown, up to ``lag`` windows later.

    ../.venv/bin/python noritual.py BUNDLE [BUNDLE ...] [--artifact tflite-int8] [--subjects test|val] [--seed 0]
        [--smooth none|default|SPEC] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from _common import stamp, write_json
from orientation import random_rotation  # benchmarks/orientation.py: one seeded uniform 3-D rotation

from hartool.core.bundle import Bundle
from hartool.core.orientation import REFERENCE_GRAVITY, angle_deg, rotate, worn_rotations
from hartool.data import load_dataset
from hartool.data.recordings import UCI_HAR_TEST_SUBJECTS
from hartool.runtime.classifier import ClassifierOptions, StreamClassifier
from hartool.runtime.smoothing import DEFAULT_SMOOTHING

START_LABELS = (1, 4, 6)  # WALKING, SITTING, LAYING: how users start a stream (HAPT label ids)
CASES = ("as_worn", "turned", "reattached")


def start_sample(labels: np.ndarray, rng: np.random.Generator) -> int:
    """The first sample of a seeded random sitting, lying or walking segment."""
    starts = np.flatnonzero(np.diff(labels.astype(np.int64), prepend=-99) != 0)
    ok = [int(s) for s in starts if int(labels[s]) in START_LABELS]
    return int(rng.choice(ok))


def draw(labels: np.ndarray, rng: np.random.Generator) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """One recording's share of the protocol's seeded draw: its start sample and each case's turns (first half,
    second half). calibration_locks.py draws through this too, so both see the same streams for a seed."""
    start = start_sample(labels, rng)
    one = random_rotation(rng)
    return start, {"as_worn": (np.eye(3), np.eye(3)), "turned": (one, one),
                   "reattached": (random_rotation(rng), random_rotation(rng))}


def turned_halves(values: np.ndarray, turns: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The stream worn as the case says: its first half turned by ``turns[0]``, the rest by ``turns[1]``."""
    half = len(values) // 2
    return np.concatenate([rotate(values[:half], turns[0]), rotate(values[half:], turns[1])])


def subjects_of(bundle: Bundle, which: str) -> list[int]:
    """UCI's test subjects, or the bundle's own validation subjects (people it never trained on)."""
    if which == "test":
        return sorted(UCI_HAR_TEST_SUBJECTS)
    return [int(s) for s in bundle.manifest["dataset"]["val_subjects"]]


def worn_upright(bundle: Bundle, values: np.ndarray) -> np.ndarray:
    """The device-frame upright of the as-worn recording: where the rotation its stream holds at the end of the
    first attachment (before HAPT's phone comes off the waist) takes the reference from. A wrong lock from the
    postures that a walk later corrects ends an "attachment" too, and then this truth is the wrong lock (errors
    read 0): calibration_locks.py measures against the recording's labelled walking instead."""
    m = bundle.manifest
    _starts, _att, final = worn_rotations(values, float(m["sample_rate_hz"]), int(m["window"]), int(m["stride"]))
    return final[0].T @ np.asarray(REFERENCE_GRAVITY) if final else np.asarray(REFERENCE_GRAVITY)


def stream(bundle: Bundle, artifact: str | None, values: np.ndarray, labels: np.ndarray,
           turns: tuple[np.ndarray, np.ndarray], halfway: int, upright: np.ndarray,
           smooth: str = "none") -> list[dict]:
    """One row per window: scored, correct, calibrated, its time, and how far the calibrated upright is off.

    ``values`` are already turned: by ``turns[0]`` before sample ``halfway`` and ``turns[1]`` from it on."""
    clf = StreamClassifier(bundle, ClassifierOptions(artifact=artifact, smooth=smooth))
    m = bundle.manifest
    window, hop, rate = int(m["window"]), int(m["stride"]), float(m["sample_rate_hz"])
    label_ids = np.asarray(m["label_ids"])
    rows = []
    for s in range(0, len(values) + hop, hop):
        # One step past the end flushes the windows a look-ahead smoother still holds.
        for p in clf.push(None, values[s:s + hop]) if s < len(values) else clf.flush():
            cal = clf.transform.calibrator
            row = {"t": p.end_sample / rate, "after": p.end_sample - window >= halfway,
                   "calibrated": bool(cal is not None and p.calibrated), "err": None}
            if row["calibrated"]:
                turn = turns[1] if p.end_sample > halfway else turns[0]
                row["err"] = angle_deg(cal.rotation @ turn @ upright, REFERENCE_GRAVITY)
            lab = labels[p.end_sample - window:p.end_sample]
            row["scored"] = bool(np.all(lab == lab[0]) and lab[0] in label_ids)
            if row["scored"]:
                row["correct"] = bool(label_ids[m["labels"].index(p.label)] == lab[0])
            rows.append(row)
    return rows


def summarise(rows: list[dict]) -> dict:
    """Accuracy of calibrated / uncalibrated / all scored windows, coverage, seconds to lock and re-lock."""
    scored = [r for r in rows if r["scored"]]
    cal = [r for r in scored if r["calibrated"]]
    unc = [r for r in scored if not r["calibrated"]]

    def acc(rs: list[dict]) -> float | None:
        return round(100 * sum(r["correct"] for r in rs) / len(rs), 2) if rs else None

    return {"windows": len(scored), "calibrated_acc": acc(cal), "coverage": round(100 * len(cal) / max(len(scored), 1), 1),
            "uncalibrated_acc": acc(unc), "all_acc": acc(scored), "correct": sum(r["correct"] for r in scored),
            "calibrated_correct": sum(r["correct"] for r in cal), "calibrated": len(cal),
            "uncalibrated_correct": sum(r["correct"] for r in unc)}


def lock_times(rows: list[dict], halfway_s: float, relock_deg: float) -> tuple[float | None, float | None]:
    """Seconds to the first calibrated window, and from the re-attach to the first right calibrated one after it."""
    lock = next((r["t"] for r in rows if r["calibrated"]), None)
    relock = next((r["t"] - halfway_s for r in rows if r["after"] and r["calibrated"] and r["err"] < relock_deg), None)
    return lock, relock


def pooled(parts: list[dict]) -> dict:
    """Window-weighted totals over recordings."""
    n = sum(p["windows"] for p in parts)
    ncal = sum(p["calibrated"] for p in parts)

    def pct(a: int, b: int) -> float | None:
        return round(100 * a / b, 2) if b else None

    return {"windows": n, "calibrated_acc": pct(sum(p["calibrated_correct"] for p in parts), ncal),
            "coverage": pct(ncal, n), "uncalibrated_acc": pct(sum(p["uncalibrated_correct"] for p in parts), n - ncal),
            "all_acc": pct(sum(p["correct"] for p in parts), n)}


def evaluate(bundle_dirs: list[str], artifact: str | None, which: str, seed: int, relock_deg: float,
             smooth: str = "none") -> dict:
    """The protocol over each bundle's subjects (each bundle drawn from its own ``seed``-ed generator, as when
    run alone), pooled window by window over all of them: with ``--subjects val`` and fold models, people
    scored by models that never trained on them."""
    per_case: dict[str, list[dict]] = {c: [] for c in CASES}
    times: dict[str, list] = {"lock_s": [], "relock_s": []}
    subjects: list[int] = []
    recordings = 0
    for bundle_dir in bundle_dirs:
        bundle = Bundle.load(bundle_dir)
        ds = load_dataset(bundle.manifest["dataset"]["name"])
        ids = subjects_of(bundle, which)
        recs = [r for r in ds.recordings if r.subject in ids]
        subjects += ids
        recordings += len(recs)
        _evaluate_bundle(bundle, recs, artifact, np.random.default_rng(seed), relock_deg, smooth, per_case, times)
    out: dict = {"bundle": bundle_dirs[0] if len(bundle_dirs) == 1 else bundle_dirs, "artifact": artifact,
                 "subjects": which, "subject_ids": subjects, "recordings": recordings, "seed": seed,
                 "relock_deg": relock_deg, "smooth": smooth}
    for case in CASES:
        out[case] = pooled(per_case[case])
    for key, vals in times.items():
        got = [v for v in vals if v is not None]
        out[key] = {"median": round(float(np.median(got)), 1) if got else None, "never": len(vals) - len(got)}
    return out


def _evaluate_bundle(bundle: Bundle, recs: list, artifact: str | None, rng: np.random.Generator,
                     relock_deg: float, smooth: str, per_case: dict[str, list[dict]], times: dict[str, list]) -> None:
    """One bundle's recordings through the protocol: each case's summary and the lock times appended."""
    rate = float(bundle.manifest["sample_rate_hz"])
    for r in recs:
        start, turns = draw(r.labels, rng)
        values, labels = r.values[start:], r.labels[start:]
        upright = worn_upright(bundle, values)
        halfway = len(values) // 2
        for case in CASES:
            rows = stream(bundle, artifact, turned_halves(values, turns[case]), labels, turns[case], halfway,
                          upright, smooth)
            per_case[case].append(summarise(rows))
            if case == "reattached":
                lock, relock = lock_times(rows, halfway / rate, relock_deg)
                times["lock_s"].append(lock)
                times["relock_s"].append(relock)
        print(f"{r.session}: start {start / rate:.0f} s " + " ".join(
            f"{c} {per_case[c][-1]['calibrated_acc']}/{per_case[c][-1]['coverage']}/{per_case[c][-1]['all_acc']}"
            for c in CASES), file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", nargs="+", help="One bundle, or several (fold models) pooled.")
    ap.add_argument("--artifact", default="tflite-int8")
    ap.add_argument("--subjects", choices=["test", "val"], default="val")
    ap.add_argument("--seed", type=int, default=0, help="Seeds the start segments and the rotations.")
    ap.add_argument("--relock-deg", type=float, default=15.0,
                    help="A calibration counts as right again when its upright is within this of the true one.")
    ap.add_argument("--smooth", default="none",
                    help="Score the labels this smoother shows ('default': the one `hartool stream` runs).")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    smooth = DEFAULT_SMOOTHING if args.smooth == "default" else args.smooth
    row = evaluate(args.bundle, args.artifact, args.subjects, args.seed, args.relock_deg, smooth)
    print(json.dumps(row), flush=True)
    if args.json:
        write_json(args.json, stamp(sys.argv) | row)


if __name__ == "__main__":
    main()
