"""A new user's path through README.md: every sh/console example run as tests/test_readme.py runs it.

Usage: nice -n 10 .venv/bin/python benchmarks/readme_path.py [--no-write]

Runs ``pytest tests/test_readme.py`` (the real CLI, tiny settings, the README's blocks in order in one
directory; see that file's docstring for the directives and stand-ins) and turns its per-block results into a
table (example, result, note, seconds). Writes ``benchmarks/results/readme_path.json`` and puts the table in
the section "New user's path: the README examples" at the END of benchmarks/RESULTS.md (an earlier run's
section is replaced).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from _common import REPO, md_table, save, stamp

HEADING = "## New user's path: the README examples"
RESULTS_MD = REPO / "benchmarks" / "RESULTS.md"


def run_readme_test(junit: Path) -> tuple[int, float]:
    """pytest over tests/test_readme.py with a JUnit report; (exit code, wall seconds)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "toolkit"),
                                                                      os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_readme.py",
                           f"--junitxml={junit}"], cwd=REPO, env=env, check=False)
    return proc.returncode, time.perf_counter() - t0


def _first_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return next((ln.removeprefix("AssertionError: ").removeprefix("E ").strip() for ln in lines
                 if "Error" in ln or "exited" in ln), lines[0] if lines else "")


def block_rows(junit: Path) -> list[dict[str, Any]]:
    """One row per README block (test_readme_block cases), with result, note and seconds."""
    rows = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        if not name.startswith("test_readme_block["):
            continue
        example = name[len("test_readme_block["):-1]
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            result, note = "fails", _first_line(failure.get("message") or failure.text)
        elif skipped is not None:
            result, note = "not run here", (skipped.get("message") or "").removeprefix("Skipped: ")
        else:
            result, note = "works", ""
        rows.append({"example": example, "result": result, "note": note.replace("|", "/")[:200],
                     "seconds": round(float(case.get("time", 0.0)), 1)})
    return rows


def write_section(doc: dict[str, Any]) -> None:
    """Replace (or add) the section at the end of RESULTS.md."""
    text = RESULTS_MD.read_text(encoding="utf-8")
    if HEADING in text:
        start = text.index(HEADING)
        nxt = text.find("\n## ", start + len(HEADING))
        text = text[:start].rstrip("\n") + ("\n\n" + text[nxt + 1:] if nxt >= 0 else "")
    table = md_table(["README example (line: first command)", "result", "note", "s"],
                     [[f"`{r['example']}`", r["result"], r["note"], r["seconds"]] for r in doc["rows"]])
    counts = {k: sum(r["result"] == k for r in doc["rows"]) for k in ("works", "fails", "not run here")}
    section = (f"{HEADING}\n\n"
               f"`{doc['command']}` ({doc['date']}; {doc['machine']}; `uname -m; nproc`: {doc['uname_nproc']}). "
               f"Each fenced sh/console block of README.md, run in README order in one fresh directory through "
               f"the real CLI with the tiny settings and stand-ins its `readme-test` directive names (a pty from "
               f"`hartool simulate` for /dev/ttyACM0, the test broker, `hartool simulate --as` for phone apps); "
               f"console sample output is checked against the run. {counts['works']} blocks work, "
               f"{counts['fails']} fail, {counts['not run here']} are not run here; pytest exit "
               f"{doc['exit_code']}, {doc['wall_s']:.0f} s in all.\n\n{table}\n")
    RESULTS_MD.write_text(text.rstrip("\n") + "\n\n" + section, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="Print the rows; leave RESULTS.md alone.")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "readme.xml"
        code, wall = run_readme_test(junit)
        rows = block_rows(junit)
    uname = subprocess.run(["sh", "-c", "uname -m; nproc"], capture_output=True, text=True, check=False).stdout
    doc = {**stamp(["nice -n 10 .venv/bin/python benchmarks/readme_path.py"]), "uname_nproc": " ".join(uname.split()),
           "exit_code": code, "wall_s": round(wall, 1), "rows": rows}
    for r in rows:
        print(f"{r['result']:13} {r['seconds']:7.1f} s  {r['example']}  {r['note']}")
    if not opts.no_write:
        save("readme_path.json", doc)
        write_section(doc)


if __name__ == "__main__":
    main()
