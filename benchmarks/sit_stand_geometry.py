"""Is the sitting/standing confusion in the gravity direction the model is not allowed to see (issue 25)?

Usage: .venv/bin/python benchmarks/sit_stand_geometry.py [--name sit_stand_geometry.json]

The default CNN is trained with rotations about the vertical up to 180 degrees (any heading on the trunk), so
of a still window's gravity it can use only the tilt from the calibrated upright, not the direction of that
tilt. If the direction separated sitting from standing across people, recovering the heading (say from the
horizontal axis of walking's accelerations) and training with less yaw would be the way to a better model.

Only the 21 non-test HAPT subjects are read. Every recording is calibrated as training calibrates it
(``calibrate_recording``); windows of 128 samples every 64 wholly labelled SITTING or STANDING are kept.
Sitting vs standing is then told from each window's mean gravity, leave-one-subject-out over the 21 people,
by a logistic regression and a 15-nearest-neighbour vote, from: the tilt alone; the calibrated 3-D direction;
the device's own (uncalibrated) 3-D direction. Within each person, the angle between the means of their
sitting and standing windows and the accuracy of the best single tilt threshold for that person (an oracle)
say how far apart one person's two postures are. Last, the change of that tilt across every labelled
stand-to-sit and sit-to-stand transition (the last 3 s before it against the first 3 s after).

Writes benchmarks/results/NAME and prints markdown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import md_table, save, stamp

from hartool.core.orientation import REFERENCE_GRAVITY, angle_deg, calibrate_recording
from hartool.data.load import load_dataset
from hartool.data.recordings import UCI_HAR_TEST_SUBJECTS

WINDOW, HOP = 128, 64
SITTING, STANDING = 4, 5
Classifier = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def calibrated_non_test() -> list[tuple[Any, np.ndarray]]:
    """Every non-test HAPT recording with its values calibrated as training calibrates them."""
    ds = load_dataset("hapt")
    return [(rec, calibrate_recording(rec.values, ds.sample_rate_hz, WINDOW, HOP)) for rec in ds.recordings
            if rec.subject not in UCI_HAR_TEST_SUBJECTS]


def tilt_deg(g: np.ndarray) -> np.ndarray:
    """The angle (degrees) of each gravity row (..., 3) from the reference upright."""
    ref = np.asarray(REFERENCE_GRAVITY, dtype=np.float64)
    cos = (g @ (ref / np.linalg.norm(ref))) / np.linalg.norm(g, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def still_windows(recordings: list[tuple[Any, np.ndarray]]) -> dict[str, np.ndarray]:
    """Subject, is-sitting and unit mean gravity (device frame and calibrated) of every sit/stand window."""
    subj, sit, raw, cal = [], [], [], []
    for rec, turned in recordings:
        for s in range(0, len(rec) - WINDOW + 1, HOP):
            lab = rec.labels[s:s + WINDOW]
            if lab[0] not in (SITTING, STANDING) or (lab != lab[0]).any():
                continue
            subj.append(rec.subject)
            sit.append(lab[0] == SITTING)
            raw.append(rec.values[s:s + WINDOW, :3].mean(axis=0))
            cal.append(turned[s:s + WINDOW, :3].mean(axis=0))
    unit = [np.asarray(v, dtype=np.float64) / np.linalg.norm(v, axis=1, keepdims=True) for v in (raw, cal)]
    return {"subject": np.asarray(subj), "sitting": np.asarray(sit), "raw": unit[0], "cal": unit[1],
            "tilt": tilt_deg(unit[1])[:, None]}


def logistic(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> np.ndarray:
    """Plain L2 logistic regression by gradient descent on standardised features; True = sitting."""
    mu, sd = xtr.mean(axis=0), xtr.std(axis=0) + 1e-9
    ztr = np.c_[(xtr - mu) / sd, np.ones(len(xtr))]
    w = np.zeros(ztr.shape[1])
    for _ in range(3000):
        p = 1.0 / (1.0 + np.exp(-ztr @ w))
        w -= 0.5 * (ztr.T @ (p - ytr) / len(ytr) + 1e-3 * w)
    return np.c_[(xte - mu) / sd, np.ones(len(xte))] @ w > 0


def knn(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, k: int = 15) -> np.ndarray:
    """Majority of the k nearest training windows (squared Euclidean); True = sitting."""
    d = ((xte[:, None, :] - xtr[None, :, :]) ** 2).sum(axis=-1)
    return ytr[np.argsort(d, axis=1)[:, :k]].mean(axis=1) > 0.5


def loso(data: dict[str, np.ndarray], x: np.ndarray, fit: Classifier) -> dict[int, float]:
    """Each non-test subject's sit/stand accuracy with the classifier fitted on the other 20."""
    y = data["sitting"].astype(np.float64)
    out = {}
    for s in np.unique(data["subject"]).tolist():
        held = data["subject"] == s
        out[s] = float((fit(x[~held], y[~held], x[held]) == data["sitting"][held]).mean())
    return out


def within_person(data: dict[str, np.ndarray]) -> dict[int, dict[str, float]]:
    """Per subject: median tilts, the angle between the two posture means, the best one-threshold accuracy."""
    out = {}
    for s in np.unique(data["subject"]).tolist():
        m = data["subject"] == s
        ts, tt = data["tilt"][m & ~data["sitting"], 0], data["tilt"][m & data["sitting"], 0]
        best = max(((ts < t).sum() + (tt >= t).sum()) / (len(ts) + len(tt)) for t in np.r_[ts, tt])
        out[s] = {"stand_tilt": float(np.median(ts)), "sit_tilt": float(np.median(tt)),
                  "posture_angle": angle_deg(data["cal"][m & ~data["sitting"]].mean(axis=0),
                                             data["cal"][m & data["sitting"]].mean(axis=0)),
                  "oracle_threshold_accuracy": float(best)}
    return out


def transitions(recordings: list[tuple[Any, np.ndarray]]) -> dict[str, list[float]]:
    """The change of tilt from upright (degrees) across every labelled stand-to-sit and sit-to-stand transition of
    the non-test subjects: the last 3 s of the still posture before it against the first 3 s after it."""
    out: dict[str, list[float]] = {"stand_to_sit": [], "sit_to_stand": []}
    for rec, turned in recordings:
        bounds = np.r_[0, np.flatnonzero(np.diff(rec.labels)) + 1, len(rec)]
        segs = [(int(rec.labels[a]), int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        for i, (label, _a, _b) in enumerate(segs):
            key = {7: "stand_to_sit", 8: "sit_to_stand"}.get(label)
            prev = next((s for s in reversed(segs[:i]) if s[0] in (SITTING, STANDING)), None)
            nxt = next((s for s in segs[i + 1:] if s[0] in (SITTING, STANDING)), None)
            if key and prev and nxt:
                after = turned[nxt[1]:min(nxt[2], nxt[1] + 150), :3].mean(axis=0)
                before = turned[max(prev[1], prev[2] - 150):prev[2], :3].mean(axis=0)
                out[key].append(float(tilt_deg(after.astype(np.float64)) - tilt_deg(before.astype(np.float64))))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="sit_stand_geometry.json")
    args = ap.parse_args()
    recordings = calibrated_non_test()
    data = still_windows(recordings)
    features = {"tilt from upright only": data["tilt"] / 57.2958, "calibrated 3-D direction": data["cal"],
                "device 3-D direction (uncalibrated)": data["raw"]}
    across = {f"{name}, {cname}": loso(data, x, fit) for name, x in features.items()
              for cname, fit in (("logistic", logistic), ("15-NN", knn))}
    person = within_person(data)
    turns = transitions(recordings)
    doc = stamp(sys.argv) | {"windows": int(len(data["sitting"])), "sitting": int(data["sitting"].sum()),
                             "loso": across, "within_person": person, "transition_tilt_change": turns}
    save(args.name, doc)
    print(f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n")
    rows: list[list[Any]] = []
    for name, acc in across.items():
        v = np.asarray(list(acc.values()))
        worst = sorted(acc.items(), key=lambda t: t[1])[:3]
        rows.append([name, f"{100 * v.mean():.1f} %", ", ".join(f"{s}: {100 * a:.1f} %" for s, a in worst)])
    print(md_table(["features, classifier", "sit/stand accuracy, mean of 21 people", "worst people"], rows))
    angles = np.asarray([p["posture_angle"] for p in person.values()])
    oracle = np.asarray([p["oracle_threshold_accuracy"] for p in person.values()])
    print(f"\nWithin one person: sitting and standing means {angles.min():.1f}-{angles.max():.1f} deg apart; "
          f"best per-person tilt threshold {100 * oracle.mean():.1f} % (worst {100 * oracle.min():.1f} %).")
    up, down = np.asarray(turns["stand_to_sit"]), np.asarray(turns["sit_to_stand"])
    print(f"Tilt change across transitions: stand-to-sit grows in {(up > 0).sum()} of {len(up)} (median "
          f"{np.median(up):+.1f} deg), sit-to-stand falls in {(down < 0).sum()} of {len(down)} (median "
          f"{np.median(down):+.1f} deg).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
