"""Windows in seconds or samples at the data's rate, the window proposed for short runs, and messages in the
user's activity names (``hartool data info`` and the library)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hartool.cli import cli
from hartool.core.errors import DataError
from hartool.data import load_dataset, make_windows
from hartool.data.info import data_report
from hartool.data.windowing import parse_length, proposed_window, to_samples
from owndata_testing import write_subject


@pytest.mark.parametrize(("text", "expected"), [
    ("2.56s", (2.56, "s")), ("2.56S", (2.56, "s")), ("128", (128.0, "samples")), (128, (128.0, "samples")),
    (" 3s ", (3.0, "s")),
])
def test_lengths_parse_as_seconds_or_samples(text: str | int, expected: tuple[float, str]) -> None:
    assert parse_length(text) == expected


@pytest.mark.parametrize(("text", "msg"), [
    ("abc", "is not a length"), ("2.5x", "is not a length"), ("-1", "must be positive"), ("0s", "must be positive"),
    ("12.5", "whole number"),
])
def test_bad_lengths_say_how_to_write_one(text: str, msg: str) -> None:
    with pytest.raises(DataError, match=msg):
        parse_length(text)


@pytest.mark.parametrize(("rate", "window", "stride"), [(50.0, 128, 64), (10.0, 26, 13), (25.0, 64, 32),
                                                         (100.0, 256, 128), (200.0, 512, 256)])
def test_defaults_are_2_56_s_and_1_28_s_at_the_rate(rate: float, window: int, stride: int) -> None:
    assert to_samples(None, rate, 2.56) == window and to_samples(None, rate, 1.28) == stride
    assert to_samples("2s", rate, 2.56) == int(round(2 * rate)) and to_samples("40", rate, 2.56) == 40


def _short_runs(root: Path) -> Path:
    """Four people at 10 Hz with 8-s runs: 12.8 s windows (128 samples) fit nowhere, 8 s windows everywhere."""
    for i, name in enumerate(("ann", "ben", "cat", "dan")):
        write_subject(root / f"{name}.csv", name, [("WALKING", 8), ("SITTING", 8), ("LAYING", 8), ("jogging", 8)],
                      seed=i, rate_hz=10.0)
    return root


def test_short_runs_get_a_proposed_window_and_names_in_the_error(tmp_path: Path) -> None:
    ds = load_dataset(f"csv:{_short_runs(tmp_path / 'd')}")
    ids = sorted(ds.label_names)
    assert proposed_window(ds, ids, 128) == 80
    assert proposed_window(ds, ids, 26) is None  # the default at 10 Hz fits
    with pytest.raises(DataError) as err:
        make_windows(ds, 128, 13)
    text = str(err.value)
    # The user's activity names (as the csv reader reads them: "jogging" is JOGGING), both units, the window that
    # fits; no internal ids.
    assert "fits in any labelled run of WALKING, SITTING, LAYING, JOGGING;" in text
    assert "128 samples (12.80 s at 10 Hz)" in text and "try --window 80" in text
    assert "[" not in text and "101" not in text


def test_data_info_recommends_a_window_an_arch_and_where_more_data_matters(tmp_path: Path) -> None:
    data = _short_runs(tmp_path / "d")
    result = CliRunner().invoke(cli, ["data", "info", f"csv:{data}", "--window", "128"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rec = lines[lines.index("recommendation:"):]
    assert rec[1] == "  window: 80 samples (8.00 s at 10 Hz) (the current window leaves too much out)"
    assert rec[2].startswith("  arch: --arch auto would likely pick features")
    assert rec[3].startswith("  more data: ") and "min" in rec[3]
    assert "--window 80 (8.00 s) keeps 100%" in result.output
    # The default is 2.56 s at the data's rate: 26 samples at 10 Hz, which fits.
    doc = json.loads(CliRunner().invoke(cli, ["data", "info", f"csv:{data}", "--json"]).output)
    assert doc["window"] == 26 and doc["recommendation"]["window"] == 26
    assert not doc["recommendation"]["window_changed"] and doc["n_windows"] == 4 * 4 * 5
    assert CliRunner().invoke(cli, ["data", "info", f"csv:{data}", "--window", "2.6s", "--json"]).exit_code == 0
    bad = CliRunner().invoke(cli, ["data", "info", f"csv:{data}", "--window", "2.5x"])
    assert bad.exit_code == 2 and "write seconds as 2.56s or samples as 128" in bad.output


def test_recommendation_follows_the_data_size(tmp_path: Path) -> None:
    ds = load_dataset(f"csv:{_short_runs(tmp_path / 'd')}")
    w = make_windows(ds, 26, 13)
    rec = data_report(ds, w)["recommendation"]
    assert rec["arch"] == "features" and rec["small_data"]
    # The activity furthest below 2 min per person is named, with who is shortest.
    assert rec["more_data"].split(" needs it most")[0] in {"SITTING", "LAYING", "JOGGING", "WALKING"}
