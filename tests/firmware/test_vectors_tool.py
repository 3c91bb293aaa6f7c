"""make_vectors.py regenerates exactly the committed vector files (so they are never hand-edited)."""

from __future__ import annotations

import os
import subprocess
import sys

from hartool_fw_support import REPO, VECTORS


def test_committed_vectors_match_the_generator(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "toolkit")}
    result = subprocess.run(
        [sys.executable, str(VECTORS / "make_vectors.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    generated = sorted(p.name for p in tmp_path.glob("*.json"))
    committed = sorted(p.name for p in VECTORS.glob("*.json"))
    assert generated == committed and len(committed) == 6
    for name in committed:
        assert (tmp_path / name).read_text() == (VECTORS / name).read_text(), name
    check = subprocess.run(
        [sys.executable, str(VECTORS / "make_vectors.py"), "--check"],
        capture_output=True,
        env=env,
        check=False,
    )
    assert check.returncode == 0
