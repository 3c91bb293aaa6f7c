"""The exported library on microcontroller targets: a Cortex-M4 build under qemu (mps2-an386) prints the same
outputs as the host build, within the issue's flash/RAM budget; Cortex-M0+ and RV32IMC builds compile."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from hartool.bench.mcu import TARGETS, run_cortex_m4, target_row

FLASH_BUDGET, RAM_BUDGET = 96 * 1024, 24 * 1024


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tests/setup_services.sh installs the toolchains)")


@pytest.fixture(scope="module")
def library_src(quantized_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hartool.export.c.library import export_c

    out = tmp_path_factory.mktemp("mcu") / "lib"
    export_c(quantized_bundle, out)
    return out / "src"


def test_cortex_m4_under_qemu_equals_host(library_src: Path, tmp_path: Path) -> None:
    _need("arm-none-eabi-gcc", "qemu-system-arm", "gcc")
    windows = np.random.default_rng(0).normal(0, 0.6, (3, 128, 6)).astype(np.float32)
    row = target_row(library_src, "cortex-m4", tmp_path, windows)
    assert row["windows_run"] == 3 and row["equal_to_host"] is True
    assert row["flash_bytes"] <= FLASH_BUDGET
    assert row["static_ram_bytes"] + row["stack_bytes"] <= RAM_BUDGET
    assert row["bss"] >= 4096 and 0 < row["stack_bytes"] < 2048
    # every window runs the same ops on the same shapes: the count barely moves with the data
    assert 1e6 < row["instructions_per_window"] < 2e7


def test_per_op_profile_adds_up(library_src: Path, tmp_path: Path) -> None:
    """The profiling build brackets every graph op with SysTick reads: one count per op, summing to the window."""
    _need("arm-none-eabi-gcc", "qemu-system-arm")
    windows = np.random.default_rng(1).normal(0, 0.6, (2, 128, 6)).astype(np.float32)
    plain = run_cortex_m4(library_src, windows, tmp_path / "plain")
    prof = run_cortex_m4(library_src, windows, tmp_path / "prof", profile=True)
    ops = (library_src / "hartool_graph.c").read_text().count("HARTOOL_MARK(") - 3  # two #defines, the last mark
    assert len(prof["op_instructions"]) == ops and min(prof["op_instructions"]) > 0
    assert prof["outputs"] == plain["outputs"]
    # the ops are all of a window but the preprocessing and the argmax (and the hooks add a little)
    assert 0.9 < sum(prof["op_instructions"]) / float(np.mean(plain["instructions"])) < 1.05


@pytest.mark.parametrize("name", ["cortex-m0plus", "rv32imc"])
def test_other_targets_compile(library_src: Path, tmp_path: Path, name: str) -> None:
    _need(TARGETS[name].cc, TARGETS[name].size)
    row = target_row(library_src, name, tmp_path)
    assert row["rodata"] > 40_000 and row["text"] > 1000 and row["flash_bytes"] <= FLASH_BUDGET
