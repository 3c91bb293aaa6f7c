"""`hartool record` stores what was sent: magnitudes that contradict the units given stop the session with one
line naming the option (real pty devices, the real CLI), and `data info` names a stored file whose
magnitudes contradict its `# units:`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hartool.core.csvformat import format_header, format_row, read_csv_session
from hartool.sim.device import VirtualDevice
from hartool_testing import hartool

G = 9.80665


def _walking(n: int = 400, seed: int = 0) -> np.ndarray:
    """A moving body in g and rad/s: gravity on z plus motion, turning up to a few rad/s."""
    rng = np.random.default_rng(seed)
    acc = rng.normal(0, 0.3, (n, 3)) + [0, 0, 1]
    gyro = rng.normal(0, 1.5, (n, 3))
    return np.column_stack([acc, gyro])


def _record(device: VirtualDevice, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hartool", "record", "--port", device.port_path, "--label",
                           "WALKING", "--out", str(out), *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)


@pytest.mark.parametrize(("scale", "args", "line"), [
    ((G, 1.0), [], r"acceleration looks like m/s2 \(median \|acc\| 1\d\.\d\): pass --acc-unit m/s2, "
                   r"or --acc-unit g --units-confirmed"),
    ((1.0, 1.0), ["--acc-unit", "m/s2"], r"acceleration looks like g \(median \|acc\| 1\.\d\d\): pass "
                                         r"--acc-unit g, or --acc-unit m/s2 --units-confirmed"),
    ((1.0, 180 / np.pi), [], r"angular rate looks like deg/s \(median \|gyro\| \d+\.\d, 95th percentile "
                             r"\d+\.\d\): pass --gyro-unit deg/s, or --gyro-unit rad/s --units-confirmed"),
    ((1.0, 1.0), ["--gyro-unit", "deg/s"], r"angular rate looks like rad/s \(95th percentile \|gyro\| \d\.\d\d "
                                           r"while \|acc\| varies by 0\.\d\d g\): pass --gyro-unit rad/s, "
                                           r"or --gyro-unit deg/s --units-confirmed"),
])
def test_record_refuses_samples_whose_magnitudes_contradict_the_units(
        tmp_path: Path, scale: tuple[float, float], args: list[str], line: str) -> None:
    values = _walking()
    sent = np.column_stack([values[:, :3] * scale[0], values[:, 3:] * scale[1]])
    out = tmp_path / "bob.csv"
    with VirtualDevice(sent, rate_hz=50, speed=0, loop=True) as device:
        device.start()
        proc = _record(device, out, *args)
    assert proc.returncode == 1, proc.stderr
    assert re.fullmatch("Error: " + line, proc.stderr.strip().splitlines()[-1]), proc.stderr
    assert not list(tmp_path.iterdir())  # no file, no part file


@pytest.mark.parametrize(("args", "acc_mean_z"), [(["--acc-unit", "m/s2"], 1.0),
                                                  (["--units-confirmed"], G)])
def test_record_with_the_right_or_confirmed_units_stores_them(tmp_path: Path, args: list[str],
                                                              acc_mean_z: float) -> None:
    values = _walking()
    sent = tmp_path / "phone.txt"  # a replayed file ends by itself (a pty device never does)
    sent.write_text("".join(",".join(f"{v:.5f}" for v in row) + "\n"
                            for row in np.column_stack([values[:, :3] * G, values[:, 3:]])))
    out = tmp_path / "bob.csv"
    hartool("record", "--port", str(sent), "--label", "WALKING", "--out", str(out), *args)
    session = read_csv_session(out)
    assert len(session.values) == len(values)
    assert float(session.values[:, 2].mean()) == pytest.approx(acc_mean_z * values[:, 2].mean(), rel=1e-3)


def test_data_info_names_a_file_whose_magnitudes_contradict_its_units(tmp_path: Path) -> None:
    rows = _walking(600)
    for subject, acc_scale in (("alice", 1.0), ("bob", G)):  # bob's m/s2 stored under acc=g
        text = format_header({"subject": subject, "sample_rate_hz": 50, "units": "acc=g gyro=rad/s"})
        text += "".join(format_row(i / 50, [*(r[:3] * acc_scale), *r[3:]], "WALKING") for i, r in enumerate(rows))
        (tmp_path / f"{subject}.csv").write_text(text)
    proc = hartool("data", "info", f"csv:{tmp_path}")
    warnings = [ln for ln in proc.stderr.splitlines() if "looks like" in ln]
    assert len(warnings) == 1, proc.stderr
    assert re.fullmatch(r"warning: bob: acceleration looks like m/s2 \(median \|acc\| 1\d\.\d\) but '# units:' says "
                        r"acc=g", warnings[0])


def test_record_rate_resamples_the_rows_to_the_rate_in_the_header(tmp_path: Path) -> None:
    """A 100 Hz sender (ms timestamps, 10 s) recorded with --rate 50: 50 Hz rows, the true duration."""
    values = _walking(1000)
    sent = tmp_path / "fast.txt"
    sent.write_text("".join(f"{10 * k}," + ",".join(f"{v:.5f}" for v in row) + "\n" for k, row in enumerate(values)))
    data = tmp_path / "data"
    out = data / "bob.csv"
    proc = hartool("record", "--port", str(sent), "--label", "WALKING", "--subject", "bob", "--rate", "50",
                   "--out", str(out))
    assert "timestamps in ms" in proc.stderr
    session = read_csv_session(out)
    assert session.meta["sample_rate_hz"] == "50.0"
    np.testing.assert_allclose(np.diff(session.t_s), 0.02, atol=1e-6)
    assert len(session.values) == 500  # 0 .. 9.98 s on the 50 Hz grid
    np.testing.assert_allclose(session.values, values[::2], atol=1e-4)  # grid points fall on every 2nd sample
    info = hartool("data", "info", f"csv:{data}", "--json")
    assert json.loads(info.stdout)["per_subject"][0]["seconds"] == pytest.approx(10.0, abs=0.05)


def test_record_never_replaces_an_existing_file_without_force(tmp_path: Path) -> None:
    values = _walking(200)
    sent = tmp_path / "sent.txt"
    sent.write_text("".join(",".join(f"{v:.5f}" for v in row) + "\n" for row in values))
    out = tmp_path / "alice.csv"
    out.write_text("a 537 s session\n")
    args = ["record", "--port", str(sent), "--label", "WALKING", "--out", str(out)]
    proc = hartool(*args, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"Error: {out} exists; pass --force to replace it, or choose another --out"
    assert out.read_text() == "a 537 s session\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "alice.csv", "sent.txt"]
    hartool(*args, "--force")
    assert len(read_csv_session(out).values) == 200


def test_a_recording_with_t_s_in_seconds_is_not_announced_as_ms(tmp_path: Path) -> None:
    """Replaying a `record` CSV (t_s in seconds): no "device timestamps are in ms (detected ...)" note."""
    values = _walking(300)
    src = tmp_path / "src.csv"
    src.write_text(format_header({"subject": "x", "sample_rate_hz": 50})
                   + "".join(format_row(i / 50, row, "WALKING") for i, row in enumerate(values)))
    proc = hartool("record", "--port", str(src), "--label", "WALKING", "--out", str(tmp_path / "copy.csv"))
    assert "device timestamps are in" not in proc.stderr, proc.stderr
    copy = read_csv_session(tmp_path / "copy.csv")
    np.testing.assert_allclose(copy.t_s, np.arange(300) / 50, atol=1e-6)
    np.testing.assert_allclose(copy.values, read_csv_session(src).values, atol=1e-6)
