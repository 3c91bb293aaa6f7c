"""Leave-one-subject-out over the 30 HAPT subjects with the default training recipe (issue 13).

Usage: .venv/bin/python benchmarks/loso.py --arch cnn [--arch features] [--out /work/loso] [--nice]
       .venv/bin/python benchmarks/loso.py --arch cnn --out /work/loso --partial [--tag T]   # folds logged so far
       .venv/bin/python benchmarks/loso.py --arch cnn --out /work/loso --resume [--nice]     # finish a stopped run

Runs `hartool train --arch ARCH --cv loso --out OUT/ARCH` (every fold: the default epochs, early stopping and
seed, one subject held out, validation subjects drawn from the rest; then the final bundle on everyone),
and reads the per-subject table the manifest keeps under ``metrics.cv``. Writes
benchmarks/results/loso-ARCH.json and prints the RESULTS.md section. ``--nice`` runs training at the lowest
CPU priority, so other work on the machine is not slowed (the wall time then is not a training time).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import md_table, save, stamp


def train_cli(args: list[str], nice: bool, log: Path, mode: str) -> None:
    """`hartool train ARGS` with its output in ``log`` (opened with ``mode``); exits the script if it fails."""
    cmd = [sys.executable, "-m", "hartool", "train", *args]
    if nice:
        cmd = ["nice", "-n", "19", *cmd]
    with log.open(mode) as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                              check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log}")


def run_loso(arch: str, out: Path, nice: bool, extra: list[str]) -> dict[str, Any]:
    """One `--cv loso` run; returns the manifest's cv table and the wall time."""
    t0 = time.perf_counter()
    log = out.parent / f"loso-{arch}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    train_cli(["--arch", arch, "--cv", "loso", "--out", str(out), *extra], nice, log, "w")
    cv = json.loads((out / "manifest.json").read_text())["metrics"]["cv"]
    return {"arch": arch, "cv": cv, "wall_s": time.perf_counter() - t0, "log": str(log), "args": extra}


def folds_from_log(log: Path) -> list[dict[str, Any]]:
    """The folds a (possibly unfinished) run has logged: ``fold SUBJECT: accuracy X% on N windows``."""
    folds = []
    for m in re.finditer(r"^fold (\S+): accuracy ([0-9.]+)% on (\d+) windows$", log.read_text(), re.M):
        folds.append({"subject": m.group(1), "accuracy": float(m.group(2)) / 100, "windows": int(m.group(3))})
    return folds


def fold_subjects(arch: str, extra: list[str]) -> list[str]:
    """The subjects `--cv loso` makes folds of, in its order, for the ``--dataset`` passed through (default hapt)."""
    from hartool.train.cv import loso_subjects
    from hartool.train.fit import TrainOptions

    dataset = next((extra[i + 1] for i, a in enumerate(extra[:-1]) if a == "--dataset"), "hapt")
    return loso_subjects(TrainOptions(arch=arch, dataset=dataset))


def resume(arch: str, out: Path, nice: bool, extra: list[str]) -> None:
    """Finish a stopped run: train the folds its log lacks, one `hartool train --test-subjects S` each.

    A fold of ``--cv loso`` is exactly that run (same recipe, seed and validation draw), so the folds add up to
    the table an uninterrupted run would have written; each is appended to the log in the same line format.
    """
    log = out / f"loso-{arch}.log"
    done = {f["subject"] for f in folds_from_log(log)}
    subjects = [s for s in fold_subjects(arch, extra) if s not in done]
    for subject in subjects:
        bundle = out / f"resume-{arch}-{subject}"
        train_cli(["--arch", arch, "--test-subjects", subject, "--out", str(bundle), *extra], nice,
                  out / f"resume-{arch}.log", "a")
        test = json.loads((bundle / "manifest.json").read_text())["metrics"]["test"]
        with log.open("a") as fh:
            fh.write(f"fold {subject}: accuracy {100 * test['accuracy']:.2f}% on {test['n']} windows\n")
        shutil.rmtree(bundle, ignore_errors=True)


def partial(arch: str, log: Path) -> dict[str, Any]:
    """Accuracy mean ± sd over the folds logged so far (macro-F1 is only in the finished run's manifest)."""
    folds = folds_from_log(log)
    acc = np.array([f["accuracy"] for f in folds])
    cv = {"n_folds": len(folds), "accuracy_mean": float(acc.mean()) if len(acc) else None,
          "accuracy_sd": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, "folds": folds, "partial": True}
    return {"arch": arch, "cv": cv, "log": str(log)}


def render(doc: dict[str, Any]) -> str:
    rows = []
    for r in doc["runs"]:
        cv = r["cv"]
        worst = sorted(cv["folds"], key=lambda f: f["accuracy"])[:4]
        f1 = f"{100 * cv['macro_f1_mean']:.2f} % ± {100 * cv['macro_f1_sd']:.2f} %" if "macro_f1_mean" in cv else "-"
        rows.append([r["arch"] + (" (partial)" if cv.get("partial") else ""),
                     f"{100 * cv['accuracy_mean']:.2f} % ± {100 * cv['accuracy_sd']:.2f} %", f1, cv["n_folds"],
                     ", ".join(f"{f['subject']}: {100 * f['accuracy']:.1f} %" for f in worst),
                     sum(f["accuracy"] == 1.0 for f in cv["folds"]),
                     f"{r['wall_s'] / 60:.0f} min" if "wall_s" in r else "-"])
    return "\n".join([
        f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n",
        md_table(["model", "LOSO accuracy, mean ± sd", "macro-F1, mean ± sd", "folds", "worst subjects",
                  "subjects at 100 %", "wall"], rows)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", action="append", required=True, choices=["cnn", "lstm", "features"])
    ap.add_argument("--out", type=Path, default=Path("/work/loso"))
    ap.add_argument("--nice", action="store_true")
    ap.add_argument("--partial", action="store_true",
                    help="do not train: report the folds an unfinished run has logged in OUT/loso-ARCH.log")
    ap.add_argument("--tag", default="", help="added to the result file names (loso-ARCH-TAG.json): a run of "
                                              "another default must not overwrite an earlier one's rows")
    ap.add_argument("--resume", action="store_true",
                    help="train only the folds OUT/loso-ARCH.log lacks, append them to it; then use --partial")
    args, extra = ap.parse_known_args()
    doc = stamp(sys.argv)
    doc["runs"] = []
    if args.resume:
        for arch in args.arch:
            resume(arch, args.out, args.nice, extra)
        return 0
    if args.partial:
        doc["runs"] = [partial(arch, args.out / f"loso-{arch}.log") for arch in args.arch]
        for run in doc["runs"]:
            save(f"loso-{run['arch']}{'-' + args.tag if args.tag else ''}-partial.json", {**doc, "runs": [run]})
        print(render(doc))
        return 0
    for arch in args.arch:
        run = run_loso(arch, args.out / arch, args.nice, extra)
        doc["runs"].append(run)
        save(f"loso-{arch}{'-' + args.tag if args.tag else ''}.json", {**doc, "runs": [run]})
    print(render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
