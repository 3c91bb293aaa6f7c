"""Two posture-aware ideas against the smoothing miss of issue 25, judged on validation subjects only.

Usage: .venv/bin/python benchmarks/posture_smoothing.py --bundle B [--bundle B2 ...] [--name posture_smoothing.json]

The smoothing goal (every test subject within 1 pp of no smoothing, at <= 1.5x the true change rate) is missed
because the persons who lose are those whose sitting and standing the model confuses: a sticky label follows the
majority of a mixed still stretch. Two ideas that use what the stream knows about the wearer's posture:

1. **A still-bout HMM.** Two consecutive windows that are both still (the calibrator's own test,
   ``orientation.stillness``) with gravity within CLUSTER_DEG of each other belong to one held
   posture, in which the activity cannot change; between them the HMM uses its own switch probability ``still``
   (tiny: trust the bout as a whole; large: let each window speak), elsewhere ``switch`` as today. Offline,
   over each bundle's windows, fixed-lag forward-backward as ``hmm:...,lag=L`` runs it; with ``still`` equal
   to ``switch`` it is today's smoother (checked against ``smooth_sequence``). Grid over switch, floor, lag and
   still; for each family the setting with the smallest worst-validation-subject loss at <= 1.5x on every
   bundle, beside the then default (``timeline.PREVIOUS_DEFAULT``), each with its test row.
2. **Sitting and standing from the posture geometry.** Once the calibrator has found standing from the postures
   seen (the upright posture further from lying, swaying most), a still window within CLUSTER_DEG of it is
   called standing, one further but upright (< UPRIGHT_PAIR_DEG[1]) sitting, one beyond LYING_DEG lying. Scored
   against the truth and against the model's own label on the same windows: on each bundle's validation
   subjects, and on all 21 non-test subjects for the first bundle (the geometry involves no model; the model's
   own figure there is flattered, it trained on 18 of them).

Writes benchmarks/results/NAME and prints markdown.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _common import md_table, save, stamp
from timeline import PREVIOUS_DEFAULT, subject_windows, validation_subjects

from hartool.core import orientation as ori
from hartool.core.bundle import Bundle
from hartool.core.metrics import timeline_report
from hartool.core.preprocess import preprocess
from hartool.data import UCI_HAR_TEST_SUBJECTS, load_dataset
from hartool.runtime.artifacts import load_bundle_predictor
from hartool.runtime.smoothing import parse_method, smooth_sequence, sticky_transitions

RATIO_GOAL = 1.5
GRID = {"switch": (0.05, 0.02, 0.01, 0.005, 0.002), "floor": (0.05, 0.1, 0.2, 0.3), "lag": (0, 1, 2),
        "still": (None, 1e-5, 1e-3, 0.1, 0.3, 0.6)}
LABELS = {"STANDING": "stand", "SITTING": "sit", "LAYING": "lie"}


def stream(bundle: Bundle, pred: Any, ds: Any, subject: int) -> dict[str, Any]:
    """One subject's stream: raw probabilities, truth, which windows continue a still bout, geometry labels, and
    each window's tilt from the reference upright in the stream's frame (degrees)."""
    view, truth = subject_windows(bundle, ds, subject)
    cal = ori.calibrator_for(bundle.manifest)
    turned, geometry, same, stills, bouts = [], [], [], [], ori.StillBouts()
    ref = np.asarray(ori.REFERENCE_GRAVITY, dtype=np.float64)
    for w in view:
        w64 = np.asarray(w, dtype=np.float64)
        turned.append(cal.push(w) if cal is not None else w)
        acc, gyro = w64[:, 0:3], w64[:, 3:6]
        still, _sway = ori.stillness(np.linalg.norm(acc, axis=1), gyro)
        g = acc.mean(axis=0)
        stills.append(bool(still))
        same.append(bouts.push(w))  # the runtime's own test (hmm:...,still=P)
        geometry.append(posture_from_geometry(cal, g) if still and cal is not None else None)
    probs = pred.predict(preprocess(np.stack(turned), bundle.preprocessing))
    tilt = np.array([ori.angle_deg(t[:, 0:3].mean(axis=0), ref) for t in turned])
    return {"probs": probs, "truth": truth, "same_bout": np.array(same, dtype=np.int64), "still": stills,
            "geometry": geometry, "tilt": tilt}


def posture_from_geometry(cal: ori.OrientationCalibrator, g: np.ndarray) -> str | None:
    """stand / sit / lie for a still window's gravity (device frame) once the postures have shown standing."""
    found = cal._standing()  # the calibrator's own choice of standing among the postures seen so far
    if found is None:
        return None
    off = ori.angle_deg(found[1], g)
    if off < ori.CLUSTER_DEG:
        return "stand"
    if off < ori.UPRIGHT_PAIR_DEG[1]:
        return "sit"
    return "lie" if off >= ori.LYING_DEG else None


def still_bout_hmm(probs: np.ndarray, same: np.ndarray, switch: float, floor: float, lag: int,
                   still: float | None) -> np.ndarray:
    """Fixed-lag HMM whose transition between two windows of one still bout has its own switch probability."""
    k = probs.shape[1]
    trans = [sticky_transitions(k, switch), sticky_transitions(k, switch if still is None else still)]
    e = np.maximum(probs.astype(np.float64), floor)
    alpha, a = np.empty_like(e), None
    for t in range(len(e)):
        x = e[t] if a is None else e[t] * (a @ trans[same[t]])
        a = alpha[t] = x / x.sum()
    return fixed_lag(alpha, [trans[same[j]] * e[j] for j in range(len(e))], lag)


def fixed_lag(alpha: np.ndarray, steps: list[np.ndarray], lag: int) -> np.ndarray:
    """Posteriors from the forward messages ``alpha`` and ``lag`` windows of look-ahead, as the runtime HMM
    computes them; ``steps[j]`` is the transition matrix into window j times window j's emission."""
    out = np.empty_like(alpha)
    for t in range(len(alpha)):
        beta = np.ones(alpha.shape[1])
        for j in range(min(t + lag, len(alpha) - 1), t, -1):
            beta = steps[j] @ beta
            beta /= beta.sum()
        p = alpha[t] * beta
        out[t] = p / p.sum()
    return out


def score(streams: dict[int, dict[str, Any]], stride_s: float, setting: dict[str, Any]) -> dict[str, Any]:
    """Pooled change ratio and each subject's window-accuracy change against no smoothing."""
    pairs, raws, loss = [], [], {}
    for s, st in streams.items():
        label = still_bout_hmm(st["probs"], st["same_bout"], **setting).argmax(1)
        raws.append((st["truth"], st["probs"].argmax(1)))
        raw = timeline_report([raws[-1]], stride_s)["window_accuracy"]
        loss[s] = timeline_report([(st["truth"], label)], stride_s)["window_accuracy"] - raw
        pairs.append((st["truth"], label))
    pooled = timeline_report(pairs, stride_s)
    return {"ratio": pooled["change_ratio"], "delta": loss,
            "pooled_delta": pooled["window_accuracy"] - timeline_report(raws, stride_s)["window_accuracy"]}


def geometry_table(streams: dict[int, dict[str, Any]], labels: list[str]) -> dict[str, int]:
    """Still sitting/standing/lying windows: how many the geometry labels, and how many it and the model get right."""
    names = {i: LABELS.get(n) for i, n in enumerate(labels)}
    out = {"still_posture_windows": 0, "labelled": 0, "geometry_right": 0, "model_right": 0}
    for st in streams.values():
        for t, still, geo, p in zip(st["truth"], st["still"], st["geometry"], st["probs"], strict=True):
            if t < 0 or names.get(int(t)) is None or not still:
                continue
            out["still_posture_windows"] += 1
            if geo is None:
                continue
            out["labelled"] += 1
            out["geometry_right"] += geo == names[int(t)]
            out["model_right"] += int(np.argmax(p)) == int(t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, action="append", required=True)
    ap.add_argument("--name", default="posture_smoothing.json")
    args = ap.parse_args()
    doc = stamp(sys.argv) | {"bundles": {}, "default": PREVIOUS_DEFAULT}
    data = []
    for path in args.bundle:
        bundle = Bundle.load(path)
        entry, pred = load_bundle_predictor(bundle, None)
        ds = load_dataset(bundle.manifest["dataset"]["name"])
        val = validation_subjects(bundle, ds)
        test = [s for s in UCI_HAR_TEST_SUBJECTS if s in ds.subjects]
        data.append({"path": str(path), "artifact": entry["name"], "stride_s": bundle.stride / bundle.sample_rate_hz,
                     "labels": bundle.labels, "val": {s: stream(bundle, pred, ds, s) for s in val},
                     "test": {s: stream(bundle, pred, ds, s) for s in test}})
    check = next(iter(data[0]["val"].values()))
    same = still_bout_hmm(check["probs"], check["same_bout"], 0.02, 0.2, 2, None)
    doc["matches_runtime_hmm"] = float(np.abs(same - smooth_sequence("hmm:switch=0.02,floor=0.2,lag=2",
                                                                      check["probs"])).max())
    rows = []
    for values in itertools.product(*GRID.values()):
        setting = dict(zip(GRID, values, strict=True))
        per = [score(d["val"], d["stride_s"], setting) for d in data]
        rows.append({"setting": setting, "ratio": max(p["ratio"] for p in per),
                     "worst_loss_pp": -100 * min(min(p["delta"].values()) for p in per),
                     "pooled_gain_pp": 100 * min(p["pooled_delta"] for p in per)})
    doc["grid"] = rows
    doc["chosen"] = {}
    default = parse_method(PREVIOUS_DEFAULT)[1]
    today = next(r for r in rows if r["setting"] == {**default, "still": None})
    today["test"] = [score(d["test"], d["stride_s"], today["setting"]) for d in data]
    doc["chosen"]["the default"] = today
    for fam, members in (("today's HMM", [r for r in rows if r["setting"]["still"] is None]),
                         ("still-bout HMM", [r for r in rows if r["setting"]["still"] is not None])):
        goal = [r for r in members if r["ratio"] <= RATIO_GOAL]
        best = min(goal, key=lambda r: (round(r["worst_loss_pp"], 6), r["ratio"]))
        best["test"] = [score(d["test"], d["stride_s"], best["setting"]) for d in data]
        doc["chosen"][fam] = best
    doc["geometry"] = {f"{d['path']} (validation subjects {list(d['val'])})": geometry_table(d["val"], d["labels"])
                       for d in data}
    first = data[0]
    bundle = Bundle.load(first["path"])
    _entry, pred = load_bundle_predictor(bundle, first["artifact"])
    ds = load_dataset(bundle.manifest["dataset"]["name"])
    non_test = {s: stream(bundle, pred, ds, s) for s in sorted(set(ds.subjects)) if s not in first["test"]}
    doc["geometry"][f"{first['path']} (all {len(non_test)} non-test subjects)"] = geometry_table(non_test,
                                                                                               first["labels"])
    for d in data:
        doc["bundles"][d["path"]] = {"artifact": d["artifact"], "val": list(d["val"]), "test": list(d["test"])}
    save(args.name, doc)
    print(render(doc))
    return 0


def render(doc: dict[str, Any]) -> str:
    parts = [f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n",
             f"Offline HMM with still = switch against `smooth_sequence`: max |dp| {doc['matches_runtime_hmm']:.1e}\n"]
    rows = []
    for fam, r in doc["chosen"].items():
        s = r["setting"]
        test = [f"{100 * min(t['delta'].values()):+.2f} / {100 * t['pooled_delta']:+.2f} pp, {t['ratio']:.2f}x"
                for t in r["test"]]
        rows.append([fam, f"switch={s['switch']}, floor={s['floor']}, lag={s['lag']}, still={s['still']}",
                     f"{-r['worst_loss_pp']:+.2f} / {r['pooled_gain_pp']:+.2f} pp", f"{r['ratio']:.2f}x",
                     "; ".join(test)])
    parts.append(md_table(["setting", "chosen on validation (smallest worst loss at <= 1.5x)",
                           "validation: worst subject / pooled (worst bundle)", "ratio (worst bundle)",
                           "test: worst subject / pooled, ratio (per bundle)"], rows))
    geo = [[path, f"{g['labelled']} of {g['still_posture_windows']}", f"{100 * g['geometry_right'] / max(g['labelled'], 1):.1f} %",
            f"{100 * g['model_right'] / max(g['labelled'], 1):.1f} %"] for path, g in doc["geometry"].items()]
    parts += ["", md_table(["bundle (subjects)", "still sit/stand/lie windows labelled by the geometry",
                            "geometry right", "model right (same windows)"], geo)]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
