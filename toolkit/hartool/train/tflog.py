"""The environment TensorFlow is imported with: without its start-up log lines, and with numerics that do not
depend on the machine.

Log lines: TensorFlow's C++ side writes them (oneDNN, CPU features, absl's "before InitializeLog") to file
descriptor 2 while its libraries load, before any log level can apply (``TF_CPP_MIN_LOG_LEVEL`` no longer
reaches them), once per library: they bury a command's own output. The import is done once, with fd 2 pointed
at /dev/null; a failing import still raises its Python error. Used by the CLI (unless ``--debug``) and the
child processes that import TensorFlow.

Numerics: a seeded training run is bit-identical on one machine, but its float sums depend on two things that
differ between machines (measured, benchmarks/train_repro.py): how many threads split TensorFlow's kernels
(the number of cores by default) and which instruction set oneDNN's matrix kernels pick at run time (AVX and
AVX2 kernels round differently, measured; AVX-512 ones are wider again). :func:`reproducible_tf_env` fixes both
before TensorFlow starts: the same command trains the same model whatever the core count on one machine. It
does not make two machines' models equal (measured 2026-12-04 on an AVX-512/AMX Xeon against an AVX2 EPYC):
TensorFlow turns its oneDNN ops on by itself only on CPUs with AVX512_VNNI, AVX512_BF16 or AMX, and with them
off its Eigen kernels block their matrix products by the cache sizes they read from the CPU, which no
environment variable sets. Cross-machine figures are therefore re-measured, not assumed (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import sys

from ..core.child import PINNED_TF_ENV_VAR

__all__ = ["import_tensorflow_quietly", "reproducible_tf_env", "TF_THREADS", "ONEDNN_ISA", "TF_ENV_KEYS"]

# Two threads: what the 2-core machines that trained the bundles in benchmarks/RESULTS.md used by default, so
# those runs are what this setting reproduces. This model is too small to gain from more: on 2 cores 1, 2 and 4
# threads trained a short run in the same 20-25 s, and the full seed-0 run took 661 s on one CPU, 636 s on two.
TF_THREADS = 2
# The widest instruction set oneDNN may use on x86-64: the newest one nearly every machine that runs
# TensorFlow's wheels has. An older CPU (AVX only) still trains, with its own rounding.
ONEDNN_ISA = "AVX2"
TF_ENV_KEYS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "ONEDNN_MAX_CPU_ISA")  # what it sets


def reproducible_tf_env() -> dict[str, str]:
    """Fix TensorFlow's thread counts and oneDNN's instruction set in ``os.environ`` (values the user set are
    kept), before TensorFlow starts its thread pools; returns the settings in effect (for the manifest)."""
    wanted = {"TF_NUM_INTRAOP_THREADS": str(TF_THREADS), "TF_NUM_INTEROP_THREADS": str(TF_THREADS)}
    if platform.machine().lower() in ("x86_64", "amd64"):
        wanted["ONEDNN_MAX_CPU_ISA"] = ONEDNN_ISA
    pinned = [k for k in wanted if k not in os.environ]
    os.environ.update({k: wanted[k] for k in pinned})
    if pinned:  # children that time TensorFlow as a user runs it (benchmark's Keras baseline) drop these again
        listed = os.environ.get(PINNED_TF_ENV_VAR, "").split(",")
        os.environ[PINNED_TF_ENV_VAR] = ",".join(k for k in dict.fromkeys(listed + pinned) if k)
    return {k: os.environ[k] for k in TF_ENV_KEYS if k in os.environ}


def import_tensorflow_quietly() -> None:
    """Import ``tensorflow`` (if installed and not yet imported) with its C++ start-up lines silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    reproducible_tf_env()
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        try:
            importlib.import_module("tensorflow")
        except ImportError:
            pass  # the command that needs it says so, with the error, once stderr is back
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
