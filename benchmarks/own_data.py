"""Own data acceptance: HAPT written as a csv:DIR (record format, subjects p01..p30, acc in m/s2) trains like `hapt`.

Usage: nice -n 5 .venv/bin/python benchmarks/own_data.py [--out benchmarks/out/own_data] [--train-args '...']

1. Writes every HAPT recording as `OUT/csv/expNN_userNN.csv` in the `hartool record` format: `# subject: pNN`,
   `# sample_rate_hz: 50`, `# units: acc=m/s2 gyro=rad/s`, per-sample labels (empty = unlabeled). File names
   keep HAPT's recording order, so both trainings see their windows in the same order.
2. Trains the default CNN twice, in parallel (bundles OUT/bundle_csv, OUT/bundle_hapt): on `csv:OUT/csv`
   with `--test-subjects` = the 9 UCI test people named p02,p04,...,p24, and on `hapt` with the same people
   as numbers. Both name the same validation
   subjects (17, 21, 26: the seeded choice `hapt` makes by default) and the six basic activities.
3. Compares the test accuracies (target: within 1 pp) and the windows themselves (same count, largest
   value difference after the CSV round trip), writes `benchmarks/results/NAME.json` and prints the
   markdown for RESULTS.md. `--skip-train` reports bundles an earlier run left in OUT.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import md_table, save, stamp

from hartool.core.atomic import atomic_write_text
from hartool.core.csvformat import format_header, format_row
from hartool.core.timebase import STANDARD_GRAVITY
from hartool.data import BASIC_ACTIVITIES, HAPT_LABEL_NAMES, UCI_HAR_TEST_SUBJECTS, load_dataset, make_windows

VAL_SUBJECTS = (17, 21, 26)
LABELS = ",".join(HAPT_LABEL_NAMES[i] for i in BASIC_ACTIVITIES)
TARGET_PP = 1.0


def write_csv_dir(folder: Path) -> dict[str, int]:
    """HAPT as record-format CSV files; returns counts (files, rows)."""
    ds = load_dataset("hapt")
    folder.mkdir(parents=True, exist_ok=True)
    rows = 0
    for rec in ds.recordings:
        meta = {"subject": f"p{rec.subject:02d}", "sample_rate_hz": f"{ds.sample_rate_hz:g}",
                "units": "acc=m/s2 gyro=rad/s", "source": f"UCI HAPT {rec.session}"}
        values = rec.values.astype("float64")
        values[:, :3] *= STANDARD_GRAVITY  # the loader divides by g again (`# units: acc=m/s2`)
        names = [HAPT_LABEL_NAMES.get(int(i), "") for i in rec.labels.tolist()]
        step = 1.0 / ds.sample_rate_hz
        lines = [format_row(k * step, v, name) for k, (v, name) in enumerate(zip(values.tolist(), names, strict=True))]
        atomic_write_text(folder / f"{rec.session}.csv", format_header(meta) + "".join(lines))
        rows += len(lines)
    return {"files": len(ds.recordings), "rows": rows}


def compare_windows(csv_dir: Path) -> dict[str, object]:
    """Both datasets cut at 128/64 with the six basic labels: counts and the largest value difference."""
    labels = LABELS.split(",")
    a = make_windows(load_dataset("hapt"), 128, 64, labels=labels)
    b = make_windows(load_dataset(f"csv:{csv_dir}"), 128, 64, labels=labels)
    same = a.x.shape == b.x.shape and bool((a.y == b.y).all())
    return {"windows_hapt": len(a), "windows_csv": len(b), "same_labels": same,
            "max_abs_diff": float(abs(a.x - b.x).max()) if same else None}


def finished_run(name: str, cmd: list[str], out: Path, stdout: str | None, waited: float) -> dict[str, object]:
    """Scores of one training, from its --json output or (with --skip-train) from its bundle's manifest."""
    manifest = json.loads((out / f"bundle_{name}" / "manifest.json").read_text())
    if stdout is not None:
        result = json.loads(stdout)
    else:
        training = manifest["training"]
        result = {"metrics": manifest["metrics"], "windows": manifest["dataset"]["windows"],
                  "train_time_s": training["train_time_s"], "epochs_run": training["epochs_run"]}
    return {"command": " ".join(cmd), "test_accuracy": result["metrics"]["test"]["accuracy"],
            "macro_f1": result["metrics"]["test"]["macro_f1"], "windows": result["windows"],
            "train_time_s": result["train_time_s"], "epochs_run": result["epochs_run"],
            "test_subjects": manifest["dataset"]["test_subject_names"],
            "val_subjects": manifest["dataset"]["val_subject_names"], "waited_s": round(waited, 1)}


def training_command(name: str, dataset: str, test: list[str], val: list[str], out: Path,
                     extra: list[str]) -> list[str]:
    return ["hartool", "train", "--arch", "cnn", "--dataset", dataset, "--out", str(out / f"bundle_{name}"),
            "--labels", LABELS, "--test-subjects", ",".join(test), "--val-subjects", ",".join(val), "--quiet",
            "--json", *extra]


def start_training(cmd: list[str], log: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "hartool", *cmd[1:]], stdout=subprocess.PIPE,
                            stderr=log.open("w"), text=True, env=env)
    return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/own_data"))
    ap.add_argument("--train-args", default="", help="Extra `hartool train` arguments for both runs.")
    ap.add_argument("--skip-write", action="store_true", help="Reuse OUT/csv.")
    ap.add_argument("--skip-train", action="store_true", help="Report the bundles already in OUT.")
    ap.add_argument("--name", default="own_data", help="Results file stem under benchmarks/results/.")
    args = ap.parse_args()
    doc = stamp(sys.argv)
    csv_dir = args.out / "csv"
    if not args.skip_write:
        t0 = time.perf_counter()
        doc["csv"] = write_csv_dir(csv_dir) | {"write_s": round(time.perf_counter() - t0, 1)}
        print(f"wrote {doc['csv']['files']} files, {doc['csv']['rows']:,} rows to {csv_dir}", file=sys.stderr)
    extra = args.train_args.split()
    commands = {
        "csv": training_command("csv", f"csv:{csv_dir}", [f"p{s:02d}" for s in UCI_HAR_TEST_SUBJECTS],
                                [f"p{s:02d}" for s in VAL_SUBJECTS], args.out, extra),
        "hapt": training_command("hapt", "hapt", [str(s) for s in UCI_HAR_TEST_SUBJECTS],
                                 [str(s) for s in VAL_SUBJECTS], args.out, extra),
    }
    procs = {} if args.skip_train else {name: start_training(cmd, args.out / f"train_{name}.log")
                                        for name, cmd in commands.items()}
    doc["windows"] = compare_windows(csv_dir)  # while the trainings run
    doc["runs"] = {}
    for name, cmd in commands.items():
        t0 = time.perf_counter()
        stdout = None
        if name in procs:
            stdout, _ = procs[name].communicate(timeout=4 * 3600)
            if procs[name].returncode != 0:
                raise SystemExit(f"{name}: {' '.join(cmd)} failed; see {args.out}/train_{name}.log")
        doc["runs"][name] = finished_run(name, cmd, args.out, stdout, time.perf_counter() - t0)
    delta = 100.0 * (doc["runs"]["csv"]["test_accuracy"] - doc["runs"]["hapt"]["test_accuracy"])
    doc["delta_pp"] = round(delta, 3)
    doc["met"] = abs(delta) <= TARGET_PP
    save(f"{args.name}.json", doc)
    print(render(doc))
    return 0


def render(doc: dict) -> str:
    rows = [[name, f"`{r['command']}`", r["windows"]["train"], r["windows"]["test"], f"{100 * r['test_accuracy']:.2f} %",
             f"{100 * r['macro_f1']:.2f} %", r["epochs_run"], f"{r['train_time_s']:.0f} s"]
            for name, r in doc["runs"].items()]
    status = "met" if doc["met"] else "missed"
    w = doc["windows"]
    return "\n".join([
        f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n",
        md_table(["data", "training command", "train windows", "test windows", "test accuracy", "macro-F1",
                  "epochs", "training time"], rows),
        "",
        f"Windows: {w['windows_csv']:,} from csv:DIR, {w['windows_hapt']:,} from hapt, same labels: "
        f"{w['same_labels']}, largest value difference after the CSV round trip: {w['max_abs_diff']:.2g}.",
        "",
        f"csv:DIR − hapt: **{doc['delta_pp']:+.2f} pp** (target within ±{TARGET_PP:g} pp): {status}.",
    ])


if __name__ == "__main__":
    raise SystemExit(main())
