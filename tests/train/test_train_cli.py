"""`hartool train`: bad inputs give one clear line and exit != 0; JSON output parses."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hartool.cli import cli


def test_unknown_arch_is_rejected(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["train", "--arch", "transformer", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert ("Invalid value for '--arch': 'transformer' is not one of 'auto', 'cnn', 'lstm', 'cnn-lstm', 'bilstm', "
            "'features'") in result.output


def test_missing_dataset_path_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    result = CliRunner().invoke(cli, ["train", "--dataset", f"uci-har:{missing}", "--out", str(tmp_path / "b")])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip() and not ln.startswith("training ")]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(missing) in lines[0], result.output


def test_unknown_dataset_scheme(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["data", "info", "kaggle:foo"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "kaggle:foo" in result.output


def test_data_info_counts_windows() -> None:
    result = CliRunner().invoke(cli, ["data", "info", "hapt", "--json"])
    assert result.exit_code == 0, result.output
    import json

    info = json.loads(result.output)
    assert (info["train_windows"], info["test_windows"]) == (7415, 2996)
    assert len(info["subjects"]) == 30 and info["sample_rate_hz"] == 50.0
