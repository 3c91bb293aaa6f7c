"""Third-party log noise (TensorFlow C++ INFO/WARNING, oneDNN, absl) is silenced by default in commands that
import TensorFlow; `--debug` shows it (real CLI, a tiny training run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from hartool_testing import TINY_TRAIN

_NOISE = re.compile(r"oneDNN|absl::InitializeLog|^[IW]\d{4} |cpu_feature_guard|This TensorFlow binary is optimized")


def test_train_output_has_no_tensorflow_log_noise(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GLOG_minloglevel")}
    proc = subprocess.run([sys.executable, "-m", "hartool", "train", "--arch", "cnn", "--out", str(tmp_path / "b"),
                           *TINY_TRAIN], capture_output=True, text=True, timeout=900, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    noise = [ln for ln in proc.stderr.splitlines() if _NOISE.search(ln)]
    assert noise == [], noise
    assert (tmp_path / "b" / "manifest.json").is_file()
