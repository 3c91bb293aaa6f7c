"""Issue 21's "behaviour unchanged": the phone, fleet and enrollment benchmarks run by today's code and by the
pre-refactor commit, one after the other in the same session, on the same bundle.

Usage: .venv/bin/python benchmarks/refactor_check.py [--bundle /work/bundles/cnn] [--baseline-ref a36a56e]
       [--subjects 9,24] [--devices 4] [--windows 80]

Each benchmark script is run from its own tree (a git worktree of --baseline-ref for the baseline, this checkout
for today), with that tree's toolkit first on PYTHONPATH; their own JSON lands in each tree's
benchmarks/results/. Accuracy and window counts are deterministic given the seeded senders, so they must be
equal, not merely close; the e2e latency comparison is benchmarks/e2e_ratio.py's job. Prints both renders and
writes benchmarks/results/refactor_check.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from _common import REPO, save, stamp


def tree(ref: str) -> Path:
    where = Path("/tmp") / f"hartool-base-{ref}"
    if not where.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(where), ref], check=True,
                       capture_output=True)
    return where


def run(root: Path, script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(root / "toolkit"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / script), *args], capture_output=True,
                          text=True, env=env, cwd=root, timeout=7200, check=False)
    if proc.returncode:
        return f"FAILED (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"
    return proc.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="/work/bundles/cnn")
    ap.add_argument("--baseline-ref", default="a36a56e")
    ap.add_argument("--subjects", default="9,24")
    ap.add_argument("--devices", default="4")
    ap.add_argument("--windows", default="80")
    args = ap.parse_args()
    jobs = {
        "phone": ("phone_sources.py", "--bundle", args.bundle, "--subjects", args.subjects, "--skip-speed"),
        "fleet": ("fleet.py", "--bundle", args.bundle, "--devices", args.devices, "--windows", args.windows,
                  "--skip", "restart,cost"),
        "enroll": ("enroll.py", "personalize", "--bundle", args.bundle, "--fast"),
    }
    base = tree(args.baseline_ref)
    doc = {"stamp": stamp(sys.argv), "baseline_ref": args.baseline_ref, "runs": {}}
    for name, (script, *rest) in jobs.items():
        for label, root in (("baseline", base), ("today", REPO)):
            out = run(root, script, *rest)
            doc["runs"][f"{name}/{label}"] = out
            print(f"### {name}, {label}\n{out}", flush=True)
    save("refactor_check.json", doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
