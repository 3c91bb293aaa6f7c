"""Smoothing chosen on 21 people the models never trained on: out-of-fold validation streams (issue 25).

Usage: .venv/bin/python benchmarks/oof_smoothing.py --fold B [--fold B2 ...] --test B [--test B2 ...]
       [--name oof_smoothing.json]

Every earlier choice of smoother read the validation subjects of one to three bundles: nine streams of seven
people. A setting chosen there did not hold on test (`transition_cue.py`). Here each ``--fold`` bundle is the
default recipe (seed 0) with other validation subjects. Together their validation subjects cover the 21 non-test
HAPT people, each streamed through the fold model that never trained on them, the way `hartool stream` cuts
and calibrates them. Fold bundles of several training seeds make one pool of people per seed: a stream is a
person under one seed's model (``17@0``), the worst person is the worst such stream, and the nine-person groups
are drawn within each pool (the share over 1.5x is the mean of the pools').

Four families are searched on those streams:
- the runtime smoothers of `timeline.py`'s grid, run by ``smooth_sequence``;
- the still-bout HMM of `posture_smoothing.py`;
- the transition cue of `transition_cue.py`;
- (added 2026-12-04, second run) the still-bout HMM with a minimum activity length, ``hmm:...,dwell=D``, run by
  ``smooth_sequence`` with the runtime's held flags.
Two rules choose in each family; the second is the one the default follows since the second run:
- ``pooled``: of the settings at <= 1.5x the true change rate pooled over the 21 streams, the one whose worst
  person loses least against no smoothing wins, then the larger pooled gain.
- ``nine``: the same, but the ratio must hold for a group of nine people like the test set: at most 10 % of
  SUBSETS seeded random 9-person groups of the 21 may exceed 1.5x. (The first run chose at 1.49x pooled under
  ``pooled`` and its ratio was 1.54x / 1.55x / 1.50x on the three test bundles: a ceiling met on 21 people
  with no margin is a coin toss on 9.)
The default is the family winner under ``nine`` with the smallest worst-person loss (then the larger pooled gain).
Third run, declared before any of its seed-1 folds had finished training: under ``nine`` the runtime smoothers' winner (-1.90 pp
on its worst person) beat the dwell HMM's (-1.94 pp) by less than one window of one person, so the same rule
chooses again on two pools: the seed-0 folds and seven folds of the seed-1 recipe with the same groups.
Fourth run, declared before its seed-2 folds existed: the same rule on three pools (63 streams).
Fifth run, declared (commit e0156ea) before any test row of a lag-3 dwell setting was scored: the dwell family's
lag grid was (1, 2), narrower than the 3-window cap `timeline.py` declared for every look-ahead. On the 63
out-of-fold streams, most of the default's lost windows lie within 3 windows of a real change: a new activity's
first window is shown as the old one because, at switch 0.1 and floor 0.3, a change needs more evidence than
three windows' emissions can give. The grid now takes lag 3 too (the cap); the rule and everything else are
unchanged, and its pick becomes the default whatever its test rows say.
Then each family's winners and the earlier defaults (``timeline.PREVIOUS_DEFAULT``, ``STILL_DEFAULT``,
``DWELL_DEFAULT`` and ``LAG2_DEFAULT``) are scored on the 9 test subjects of each ``--test`` bundle. Nothing is
chosen from the test rows.

Writes benchmarks/results/NAME and prints markdown.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import md_table, save, stamp
from posture_smoothing import GRID as STILL_GRID
from posture_smoothing import RATIO_GOAL, still_bout_hmm, stream
from timeline import DWELL_DEFAULT, LAG2_DEFAULT, PREVIOUS_DEFAULT, STILL_DEFAULT, validation_subjects
from timeline import grid as runtime_grid
from transition_cue import GRID as CUE_GRID
from transition_cue import cue_hmm

from hartool.core.bundle import Bundle
from hartool.core.metrics import label_changes, timeline_report
from hartool.data import UCI_HAR_TEST_SUBJECTS, load_dataset
from hartool.runtime.artifacts import load_bundle_predictor
from hartool.runtime.smoothing import parse_method, smooth_sequence

Streams = dict[Any, dict[str, Any]]  # by person (int), or by "person@seed" over several seeds' folds
Labeler = Callable[[dict[str, Any]], np.ndarray]
DWELL_GRID = {"switch": (0.1, 0.05, 0.03, 0.02, 0.01), "floor": (0.1, 0.2, 0.3), "lag": (1, 2, 3),
              "still": (None, 0.1, 0.3, 0.6), "dwell": (1, 2, 3, 4, 6)}
GROUP, SUBSETS, RISK = 9, 2000, 0.10  # the "nine" rule: a test-sized group, how many drawn, the share allowed over


def bundle_streams(path: Path, which: str) -> tuple[Streams, float, tuple[int, int]]:
    """A bundle's validation (``which="val"``) or test streams by person, its stride in seconds, (SITTING,
    STANDING)."""
    bundle = Bundle.load(path)
    _entry, pred = load_bundle_predictor(bundle, None)
    ds = load_dataset(bundle.manifest["dataset"]["name"])
    ids = validation_subjects(bundle, ds) if which == "val" else [s for s in UCI_HAR_TEST_SUBJECTS
                                                                  if s in ds.subjects]
    labels = [str(x) for x in bundle.labels]
    return ({s: stream(bundle, pred, ds, s) for s in ids}, bundle.stride / bundle.sample_rate_hz,
            (labels.index("SITTING"), labels.index("STANDING")))


def score(streams: Streams, stride_s: float, labeler: Labeler) -> dict[str, Any]:
    """Pooled change ratio, pooled gain and each person's window-accuracy change against no smoothing."""
    pairs, raws, delta, changes = [], [], {}, {}
    for s, st in streams.items():
        raws.append((st["truth"], st["probs"].argmax(axis=1)))
        pairs.append((st["truth"], labeler(st)))
        delta[str(s)] = (timeline_report([pairs[-1]], stride_s)["window_accuracy"]
                         - timeline_report([raws[-1]], stride_s)["window_accuracy"])
        changes[str(s)] = (label_changes(pairs[-1][1]), label_changes(st["truth"], skip_unscored=True))
    pooled = timeline_report(pairs, stride_s)
    return {"ratio": pooled["change_ratio"], "worst": min(delta.values()), "delta": delta, "changes": changes,
            "over_in_nine": over_share(changes),
            "pooled": pooled["window_accuracy"] - timeline_report(raws, stride_s)["window_accuracy"]}


def over_share(changes: dict[str, tuple[int, int]]) -> float:
    """Share of SUBSETS seeded random GROUP-person groups whose pooled change ratio exceeds the goal; with
    streams of several pools (``person@seed``), the mean of each pool's share."""
    pools: dict[str, dict[str, tuple[int, int]]] = {}
    for key, value in changes.items():
        pools.setdefault(key.partition("@")[2], {})[key] = value
    if len(pools) > 1:
        return float(np.mean([over_share(pool) for pool in pools.values()]))
    counts = np.array(list(changes.values()), dtype=np.float64)
    if len(counts) <= GROUP:
        return float(counts[:, 0].sum() > RATIO_GOAL * counts[:, 1].sum())
    sums = counts[_groups(len(counts))].sum(axis=1)
    return float(np.mean(sums[:, 0] > RATIO_GOAL * sums[:, 1]))


@functools.cache
def _groups(people: int) -> np.ndarray:
    """The same SUBSETS seeded GROUP-person groups for every setting (indices into the people, in order)."""
    rng = np.random.default_rng(0)
    return np.array([rng.choice(people, GROUP, replace=False) for _ in range(SUBSETS)])


def families(posture: tuple[int, int]) -> dict[str, dict[str, Labeler]]:
    """Every setting of the four families, by name, as a function from a stream to its labels."""
    hmm = parse_method(PREVIOUS_DEFAULT)[1]
    runtime = {spec: (lambda st, spec=spec: smooth_sequence(spec, st["probs"]).argmax(axis=1))
               for spec in runtime_grid()}
    still = {}
    for values in itertools.product(*STILL_GRID.values()):
        kw = dict(zip(STILL_GRID, values, strict=True))
        if kw["still"] is not None:
            still[f"still-bout {kw}"] = (lambda st, kw=kw: still_bout_hmm(st["probs"], st["same_bout"],
                                                                          **kw).argmax(axis=1))
    cue = {}
    for values in itertools.product(*CUE_GRID.values()):
        kw = dict(zip(CUE_GRID, values, strict=True))
        if kw["c"] != 1.0:
            cue[f"cue {kw}"] = (lambda st, kw=kw: cue_hmm(st, posture, hmm["switch"], hmm["floor"], hmm["lag"],
                                                          kw).argmax(axis=1))
    dwell = {}
    for values in itertools.product(*DWELL_GRID.values()):
        spec = "hmm:" + ",".join(f"{k}={v}" for k, v in zip(DWELL_GRID, values, strict=True)
                                 if v is not None and (k, v) != ("dwell", 1))  # dwell 1: the still-bout HMM
        dwell[spec] = (lambda st, spec=spec: smooth_sequence(spec, st["probs"], st["same_bout"]).argmax(axis=1))
    return {"runtime smoothers": runtime, "still-bout HMM": still, "transition cue": cue, "dwell HMM": dwell}


RULES = ("pooled", "nine")


def choose(rows: dict[str, dict[str, Any]], rule: str) -> str | None:
    """At <= 1.5x (pooled, or in 90 % of nine-person groups), the smallest worst-person loss, then the larger
    pooled gain."""
    ok = [k for k, r in rows.items() if r["ratio"] is not None and
          (r["ratio"] <= RATIO_GOAL if rule == "pooled" else r["over_in_nine"] <= RISK)]
    return min(ok, key=lambda k: (-round(rows[k]["worst"], 6), -rows[k]["pooled"])) if ok else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fold", type=Path, action="append", required=True)
    ap.add_argument("--test", type=Path, action="append", required=True)
    ap.add_argument("--name", default="oof_smoothing.json")
    ap.add_argument("--family", action="append", help="search only these families (default: all)")
    args = ap.parse_args()
    oof: Streams = {}
    seed_of = {path: int(Bundle.load(path).manifest["training"]["seed"]) for path in args.fold}
    pooled_seeds = len(set(seed_of.values())) > 1
    for path in args.fold:
        streams, stride_s, posture = bundle_streams(path, "val")
        keys = {s: f"{s}@{seed_of[path]}" if pooled_seeds else str(s) for s in streams}
        assert not set(keys.values()) & set(oof), f"{path}: a person in two folds of one seed"
        oof.update({keys[s]: st for s, st in streams.items()})
    doc = stamp(sys.argv) | {"default": PREVIOUS_DEFAULT, "people": sorted(oof), "folds": [str(p) for p in args.fold],
                             "families": {}, "chosen": {}}
    fams = families(posture)
    for fam, settings in fams.items():
        if args.family and fam not in args.family:
            continue
        rows = {name: score(oof, stride_s, fn) for name, fn in settings.items()}
        doc["families"][fam] = {k: {x: r[x] for x in ("ratio", "worst", "pooled", "over_in_nine")}
                                for k, r in rows.items()}
        for rule in RULES:
            best = choose(rows, rule)
            if best is not None:
                doc["chosen"][f"{fam}, rule {rule}"] = {"setting": best, "oof": rows[best], "labeler": (fam, best)}
    for label, fam, name in (("the previous default", "runtime smoothers", PREVIOUS_DEFAULT),
                             ("the 2026-12-04 default", "dwell HMM", STILL_DEFAULT),
                             ("the 2026-12-04 dwell default", "dwell HMM", DWELL_DEFAULT),
                             ("the 2026-12-04 evening default", "dwell HMM", LAG2_DEFAULT)):
        doc["chosen"][label] = {"setting": name, "oof": score(oof, stride_s, fams[fam][name]), "labeler": (fam, name)}
    tests = [bundle_streams(p, "test") for p in args.test]
    for entry in doc["chosen"].values():
        fam, name = entry.pop("labeler")
        entry["test"] = [score(t, s, families(pst)[fam][name]) for t, s, pst in tests]
    doc["test_bundles"] = [str(p) for p in args.test]
    save(args.name, doc)
    print(render(doc))
    return 0


def _cell(r: dict[str, Any], groups: bool = False) -> str:
    beyond = sum(v < -0.01 for v in r["delta"].values())
    nine = f" ({100 * r['over_in_nine']:.0f} % of nine-person groups over 1.5x)" if groups else ""
    return (f"{100 * r['worst']:+.2f} / {100 * r['pooled']:+.2f} pp, {r['ratio']:.2f}x{nine}, "
            f"{beyond} beyond 1 pp")


def render(doc: dict[str, Any]) -> str:
    """Markdown: each family's choice and the default, on the out-of-fold streams and on test."""
    rows = [[fam, f"`{e['setting']}`", _cell(e["oof"], groups=True), "; ".join(_cell(t) for t in e["test"])]
            for fam, e in doc["chosen"].items()]
    return "\n".join([f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n",
                      md_table(["family", "chosen on the out-of-fold streams",
                                "out of fold: worst person / pooled, ratio, people beyond 1 pp",
                                "test per bundle: worst subject / pooled, ratio, subjects beyond 1 pp"], rows)])


if __name__ == "__main__":
    sys.exit(main())
