"""The orientation calibrator of today against the one of an earlier commit: every output equal, and the time.

Usage: .venv/bin/python benchmarks/calibrator_check.py [--baseline-ref 19b432f] [--rounds 10] [--subject 9]

Both calibrators (``hartool/core/orientation.py`` of --baseline-ref, loaded from git as its own module: the file
imports only numpy and the standard library; and today's) run over every HAPT subject's recordings, joined
into one stream as ``hartool simulate`` sends them, twice: as worn, and turned by a seeded random 3-D rotation
with a second one from halfway (re-attached). After every window the turned window, the rotation, the
calibrated flag, the source, the attachment count and the status lines must be equal to the byte. Then
both push the windows of ``--subject`` in alternating rounds (the per-window cost of ``push``, median of
the rounds' medians). Writes benchmarks/results/calibrator_check.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from _common import REPO, md_table, save, stamp
from orientation import random_rotation  # benchmarks/orientation.py: one seeded uniform 3-D rotation

from hartool.core import orientation as today
from hartool.data import load_dataset, recording_for_subject

MODULE = "toolkit/hartool/core/orientation.py"


def baseline_module(ref: str) -> ModuleType:
    """``orientation.py`` as it was at ``ref``, imported under its own name."""
    text = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:{MODULE}"], capture_output=True, text=True,
                          check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="calcheck-")) / "orientation_baseline.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("orientation_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def streams(ds: Any, seed: int) -> list[tuple[str, np.ndarray]]:
    """Every subject as worn and turned + re-attached halfway."""
    rng = np.random.default_rng(seed)
    out = []
    for s in sorted(set(ds.subjects)):
        values = np.concatenate([r.values for r in recording_for_subject(ds, s)]).astype(np.float32)
        half = len(values) // 2
        turned = np.concatenate([today.rotate(values[:half], random_rotation(rng)),
                                 today.rotate(values[half:], random_rotation(rng))])
        out += [(f"{s} as worn", values), (f"{s} re-attached", turned)]
    return out


def compare(old: ModuleType, values: np.ndarray, rate: float, window: int, hop: int) -> tuple[int, int]:
    """(windows, windows whose outputs differ in any byte) of one stream through both calibrators."""
    a, b = old.OrientationCalibrator(rate, window, hop), today.OrientationCalibrator(rate, window, hop)
    differ = n = 0
    for start in range(0, len(values) - window + 1, hop):
        w = values[start:start + window]
        out_a, out_b = a.push(w), b.push(w)
        same = (out_a.tobytes() == out_b.tobytes() and a.rotation.tobytes() == b.rotation.tobytes()
                and (a.calibrated, a.source, a.attachment) == (b.calibrated, b.source, b.attachment)
                and a.pop_messages() == b.pop_messages())
        differ += not same
        n += 1
    return n, differ


def push_times(module: ModuleType, windows: list[np.ndarray], rate: float, window: int, hop: int) -> float:
    """Median per-window time (us) of ``push`` over one fresh calibrator's stream."""
    cal = module.OrientationCalibrator(rate, window, hop)
    times = []
    for w in windows:
        t0 = time.perf_counter()
        cal.push(w)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e6)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-ref", default="19b432f")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--subject", type=int, default=9)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ds = load_dataset("hapt")
    rate, window, hop = ds.sample_rate_hz, 128, 64
    old = baseline_module(args.baseline_ref)
    checked = [(name, *compare(old, values, rate, window, hop)) for name, values in streams(ds, args.seed)]
    values = np.concatenate([r.values for r in recording_for_subject(ds, args.subject)]).astype(np.float32)
    windows = [values[s:s + window] for s in range(0, len(values) - window + 1, hop)]
    times: dict[str, list[float]] = {"baseline": [], "today": []}
    for r in range(args.rounds):
        order = [("baseline", old), ("today", today)]
        for name, module in order[:: 1 if r % 2 == 0 else -1]:
            times[name].append(push_times(module, windows, rate, window, hop))
    p50 = {k: float(np.median(v)) for k, v in times.items()}
    doc = stamp(sys.argv) | {"baseline_ref": args.baseline_ref, "streams": len(checked),
                             "windows": sum(c[1] for c in checked), "windows_differing": sum(c[2] for c in checked),
                             "differing_streams": [c[0] for c in checked if c[2]], "push_us": times,
                             "push_us_p50": p50, "subject": args.subject, "subject_windows": len(windows)}
    save("calibrator_check.json", doc)
    print(f"Command: `{doc['command']}`  \nDate: {doc['date']}  \nMachine: {doc['machine']}\n")
    print(md_table(["calibrator", "streams", "windows", "windows with any output differing",
                    f"push p50, subject {args.subject} ({len(windows)} windows, {args.rounds} alternating rounds)"],
                   [[f"{args.baseline_ref} (baseline)", len(checked), doc["windows"], "-", f"{p50['baseline']:.1f} us"],
                    ["today", len(checked), doc["windows"], doc["windows_differing"],
                     f"{p50['today']:.1f} us ({p50['baseline'] / p50['today']:.2f}x faster)"]]))
    return 1 if doc["windows_differing"] else 0


if __name__ == "__main__":
    sys.exit(main())
