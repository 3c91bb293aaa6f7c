"""`hartool service`: the printed unit is one systemd accepts and runs exactly the stream it was given."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hartool.runtime.systemd import exec_word

HARTOOL = [sys.executable, "-m", "hartool"]


def _service(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARTOOL, "service", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.fixture()
def bundle_dir(tmp_path: Path) -> Path:
    d = tmp_path / "my bundle"
    d.mkdir()
    (d / "manifest.json").write_text("{}")
    return d


def test_exec_words_escape_what_systemd_would_expand() -> None:
    assert exec_word("/dev/ttyACM0") == "/dev/ttyACM0"
    assert exec_word("100%") == "100%%"
    assert exec_word("$HOME") == "$$HOME"
    assert exec_word('a "b" c') == '"a \\"b\\" c"'
    assert exec_word("back\\slash") == '"back\\\\slash"'
    with pytest.raises(ValueError, match="control character"):
        exec_word("a\nExecStartPre=/bin/rm")


def test_unit_runs_the_given_stream(bundle_dir: Path, tmp_path: Path) -> None:
    res = _service("--name", "har-kitchen", "--user", "pi", "--executable", "/opt/hartool/bin/hartool",
                   str(bundle_dir), "--port", "/dev/ttyACM0", "--summary-json", "sum 100%.json")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert (f'ExecStart=/opt/hartool/bin/hartool stream "{bundle_dir}" --port /dev/ttyACM0 '
            '--summary-json "sum 100%%.json"') in lines
    for expected in ("User=pi", "SupplementaryGroups=dialout", "StateDirectory=har-kitchen",
                     "WorkingDirectory=/var/lib/har-kitchen", "KillSignal=SIGTERM", "Restart=on-failure",
                     "WantedBy=multi-user.target"):
        assert expected in lines
    verify = shutil.which("systemd-analyze")
    assert verify, "systemd-analyze missing: tests/setup_services.sh installs systemd"
    unit = tmp_path / "har-kitchen.service"
    unit.write_text(res.stdout.replace("/opt/hartool/bin/hartool", sys.executable))
    checked = subprocess.run([verify, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_bad_stream_arguments_fail_at_generation(bundle_dir: Path) -> None:
    res = _service(str(bundle_dir), "--prot", "/dev/ttyACM0")
    assert res.returncode != 0
    assert res.stdout == ""
    assert "would not start `hartool stream`" in res.stderr and "--prot" in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_service_name_is_one_line(bundle_dir: Path) -> None:
    res = _service("--name", "../../etc/evil", str(bundle_dir), "--port", "/dev/ttyACM0")
    assert res.returncode != 0 and res.stdout == ""
    assert res.stderr.strip().count("\n") == 0 and "service name" in res.stderr
