"""A seeded training run trains the same model whatever the machine's core count.

TensorFlow splits its kernels over as many threads as the machine has cores, and the float sums change with
the split; hartool fixes the thread count (and oneDNN's instruction set) before TensorFlow starts. Here the
same command runs pinned to one CPU and on every CPU this machine gives the test: the test outputs must be
byte-equal. benchmarks/train_repro.py measures the rest (the instruction set, and that both runs differ
without these settings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hartool.train.tflog import ONEDNN_ISA, TF_ENV_KEYS, TF_THREADS
from hartool_testing import TINY_TRAIN


def train_pinned(cpus: list[int], out: Path) -> tuple[bytes, dict]:
    """``hartool train`` (tiny) on exactly these CPUs: (the test probabilities' bytes, the manifest)."""
    # Settings inherited from the shell would decide the run instead of hartool's own defaults.
    env = {k: v for k, v in os.environ.items() if k not in TF_ENV_KEYS}
    proc = subprocess.run([sys.executable, "-m", "hartool", "train", "--arch", "cnn", *TINY_TRAIN, "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600, check=False,
                          preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (out / "keras_test_probs.npy").read_bytes(), json.loads((out / "manifest.json").read_text())


def test_one_cpu_and_every_cpu_train_the_same_model(tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("this machine gives the test one CPU: there is no core count to vary")
    one, manifest = train_pinned(cpus[:1], tmp_path / "one")
    every, _ = train_pinned(cpus, tmp_path / "every")
    assert len(one) > 1000  # the probabilities of the test windows, not an empty file
    assert one == every, f"1 CPU and {len(cpus)} CPUs trained different models"
    expected = {"TF_NUM_INTRAOP_THREADS": str(TF_THREADS), "TF_NUM_INTEROP_THREADS": str(TF_THREADS)}
    if os.uname().machine == "x86_64":
        expected["ONEDNN_MAX_CPU_ISA"] = ONEDNN_ISA
    assert manifest["training"]["tf_env"] == expected
