"""Sitting or standing from the tilt change across a posture transition: a cue for the smoother (issue 25).

Usage: .venv/bin/python benchmarks/transition_cue.py --bundle B [--bundle B2 ...] [--name transition_cue.json]

The smoothing goal (every test subject within 1 pp of no smoothing, at <= 1.5x the true change rate) is missed
on people whose sitting the model takes for standing; across people, gravity cannot tell those postures apart
(`sit_stand_geometry.py`). Within one person it can: a waist-worn device tilts further back sitting than
standing. On the 21 non-test HAPT subjects, the tilt from the calibrated upright grows across 40 of 42
stand-to-sit transitions (median +26.8 degrees) and falls across 42 of 42 sit-to-stand ones (median -32.0).

**The cue**, causal, inside today's fixed-lag HMM (``hmm:switch,floor,lag``). A still bout is a run of still
windows (the calibrator's ``stillness``) whose gravity agrees within ``CLUSTER_DEG`` from one window to the next.
When a new bout starts within ``gap`` windows of the previous one's end, its tilt is compared with the previous
bout's last tilt (``delta``), and the previous bout's label is the filtered HMM label at its last window:
standing then ``delta > d``: sitting's emission is multiplied by ``c`` in every window of the new bout; sitting
then ``delta < -d``: standing's; with ``keep``, ``|delta| <= d`` multiplies the previous bout's own label
(the same posture held). ``c = 1`` is today's smoother (checked against ``smooth_sequence``).

Selection reads each bundle's validation subjects only: of the settings at <= 1.5x on every bundle, the one with
the smallest worst-subject loss, then the larger pooled gain. Test rows are computed for the default and the
chosen setting only.

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
from posture_smoothing import RATIO_GOAL, fixed_lag, stream
from timeline import PREVIOUS_DEFAULT, validation_subjects

from hartool.core.bundle import Bundle
from hartool.core.metrics import timeline_report
from hartool.data import UCI_HAR_TEST_SUBJECTS, load_dataset
from hartool.runtime.artifacts import load_bundle_predictor
from hartool.runtime.smoothing import parse_method, smooth_sequence, sticky_transitions

GRID = {"c": (1.0, 1.5, 2.0, 3.0, 5.0, 10.0), "d": (5.0, 10.0, 15.0), "gap": (3, 10, 30), "keep": (False, True)}


def cue_filter(st: dict[str, Any], posture: tuple[int, int], switch: float, floor: float,
               cue: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Causal forward pass with the cue: (the emissions it used, the filtered posteriors)."""
    sit, stand = posture
    e = np.maximum(st["probs"].astype(np.float64), floor)
    k = e.shape[1]
    trans, alpha = sticky_transitions(k, switch), np.empty_like(e)
    a, mult = None, np.ones(k)
    last_tilt, last_label, since = None, None, 10 ** 9
    for t in range(len(e)):
        if st["still"][t]:
            if not st["same_bout"][t]:
                mult = _bout_multiplier(k, sit, stand, cue, last_label if since <= cue["gap"] else None,
                                        None if last_tilt is None else st["tilt"][t] - last_tilt)
            e[t] *= mult
        x = e[t] if a is None else e[t] * (a @ trans)
        a = alpha[t] = x / x.sum()
        if st["still"][t]:
            last_tilt, last_label, since = st["tilt"][t], int(np.argmax(a)), 0
        else:
            since += 1
    return e, alpha


def _bout_multiplier(k: int, sit: int, stand: int, cue: dict[str, Any], prev: int | None,
                     delta: float | None) -> np.ndarray:
    """The emission multiplier for every window of a new still bout."""
    mult = np.ones(k)
    if prev not in (sit, stand) or delta is None:
        return mult
    if prev == stand and delta > cue["d"]:
        mult[sit] = cue["c"]
    elif prev == sit and delta < -cue["d"]:
        mult[stand] = cue["c"]
    elif cue["keep"] and abs(delta) <= cue["d"]:
        mult[prev] = cue["c"]
    return mult


def cue_hmm(st: dict[str, Any], posture: tuple[int, int], switch: float, floor: float, lag: int,
            cue: dict[str, Any]) -> np.ndarray:
    """Fixed-lag posteriors: the causal forward pass, then ``lag`` windows of look-ahead (as the runtime HMM)."""
    e, alpha = cue_filter(st, posture, switch, floor, cue)
    trans = sticky_transitions(e.shape[1], switch)
    return fixed_lag(alpha, [trans * e[j] for j in range(len(e))], lag)


def score(streams: dict[int, dict[str, Any]], stride_s: float, posture: tuple[int, int], hmm: dict[str, Any],
          cue: dict[str, Any]) -> dict[str, Any]:
    """Pooled change ratio and each subject's window-accuracy change against no smoothing."""
    pairs, raws, delta = [], [], {}
    for s, st in streams.items():
        label = cue_hmm(st, posture, hmm["switch"], hmm["floor"], hmm["lag"], cue).argmax(axis=1)
        raws.append((st["truth"], st["probs"].argmax(axis=1)))
        pairs.append((st["truth"], label))
        delta[s] = (timeline_report([pairs[-1]], stride_s)["window_accuracy"]
                    - timeline_report([raws[-1]], stride_s)["window_accuracy"])
    pooled = timeline_report(pairs, stride_s)
    return {"ratio": pooled["change_ratio"], "delta": delta,
            "pooled_delta": pooled["window_accuracy"] - timeline_report(raws, stride_s)["window_accuracy"]}


def load(path: Path) -> dict[str, Any]:
    """A bundle's validation and test streams, with the indices of SITTING and STANDING."""
    bundle = Bundle.load(path)
    entry, pred = load_bundle_predictor(bundle, None)
    ds = load_dataset(bundle.manifest["dataset"]["name"])
    test = [s for s in UCI_HAR_TEST_SUBJECTS if s in ds.subjects]
    labels = [str(x) for x in bundle.labels]
    return {"path": str(path), "artifact": entry["name"], "stride_s": bundle.stride / bundle.sample_rate_hz,
            "posture": (labels.index("SITTING"), labels.index("STANDING")),
            "val": {s: stream(bundle, pred, ds, s) for s in validation_subjects(bundle, ds)},
            "test": {s: stream(bundle, pred, ds, s) for s in test}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, action="append", required=True)
    ap.add_argument("--name", default="transition_cue.json")
    args = ap.parse_args()
    hmm = parse_method(PREVIOUS_DEFAULT)[1]
    data = [load(p) for p in args.bundle]
    first = next(iter(data[0]["val"].values()))
    off = {"c": 1.0, "d": 5.0, "gap": 3, "keep": False}
    doc = stamp(sys.argv) | {"default": PREVIOUS_DEFAULT, "grid": [], "bundles": {
        d["path"]: {"artifact": d["artifact"], "val": list(d["val"]), "test": list(d["test"])} for d in data}}
    doc["matches_runtime_hmm"] = float(np.abs(cue_hmm(first, data[0]["posture"], hmm["switch"], hmm["floor"],
                                                      hmm["lag"], off)
                                              - smooth_sequence(PREVIOUS_DEFAULT, first["probs"])).max())
    for values in itertools.product(*GRID.values()):
        cue = dict(zip(GRID, values, strict=True))
        per = [score(d["val"], d["stride_s"], d["posture"], hmm, cue) for d in data]
        doc["grid"].append({"cue": cue, "ratio": max(p["ratio"] for p in per),
                            "worst_loss_pp": -100 * min(min(p["delta"].values()) for p in per),
                            "pooled_gain_pp": 100 * min(p["pooled_delta"] for p in per)})
    goal = [r for r in doc["grid"] if r["ratio"] <= RATIO_GOAL]
    chosen = min(goal, key=lambda r: (round(r["worst_loss_pp"], 6), -r["pooled_gain_pp"])) if goal else None
    doc["chosen"] = {"the default (no cue)": next(r for r in doc["grid"] if r["cue"] == off)}
    if chosen is not None:
        doc["chosen"]["chosen on validation"] = chosen
    for r in doc["chosen"].values():
        r["test"] = [score(d["test"], d["stride_s"], d["posture"], hmm, r["cue"]) for d in data]
    save(args.name, doc)
    print(render(doc))
    return 0


def render(doc: dict[str, Any]) -> str:
    """Markdown: the two settings, validation and test."""
    rows = []
    for name, r in doc["chosen"].items():
        c = r["cue"]
        test = [f"{100 * min(t['delta'].values()):+.2f} / {100 * t['pooled_delta']:+.2f} pp, {t['ratio']:.2f}x, "
                f"{sum(v < -0.01 for v in t['delta'].values())} beyond 1 pp" for t in r["test"]]
        rows.append([name, f"c={c['c']}, d={c['d']}, gap={c['gap']}, keep={c['keep']}",
                     f"{-r['worst_loss_pp']:+.2f} / {r['pooled_gain_pp']:+.2f} pp", f"{r['ratio']:.2f}x",
                     "; ".join(test)])
    return "\n".join([f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n",
                      f"Cue off against `smooth_sequence`: max |dp| {doc['matches_runtime_hmm']:.1e}\n",
                      md_table(["setting", "cue", "validation: worst subject / pooled (worst bundle)",
                                "ratio (worst bundle)", "test per bundle: worst subject / pooled, ratio"], rows)])


if __name__ == "__main__":
    sys.exit(main())
