"""``csv:DIR`` and the CSV recording format: written with the format helpers, read back as a dataset."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hartool.core.csvformat import CSV_COLUMNS, canonical_label, format_header, format_row, read_csv_session
from hartool.core.errors import DataError
from hartool.data import load_dataset, make_windows

RATE = 50.0


def _write(
    path: Path, labels: list[str], meta: dict | None = None, seed: int = 0, rate: float = RATE
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(len(labels), 6)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(format_header(meta or {}))
        for i, (row, label) in enumerate(zip(values, labels, strict=True)):
            fh.write(format_row(i / rate, row.tolist(), label))
    return values


def test_header_and_row_format() -> None:
    assert CSV_COLUMNS == ("t_s", "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z", "label")
    header = format_header({"subject": 3, "sample_rate_hz": 50, "units": "acc=g gyro=rad/s"})
    assert header == (
        "# subject: 3\n# sample_rate_hz: 50\n# units: acc=g gyro=rad/s\n"
        "t_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label\n"
    )
    assert format_row(0.02, [1, -0.5, 0.25, 0.001, 0, 3.14159265], "WALKING") == (
        "0.020000,1,-0.5,0.25,0.001,0,3.141593,WALKING\n"
    )
    assert format_row(1.0, [0] * 6).endswith(",\n")  # empty label = unlabeled
    with pytest.raises(ValueError, match="6 values"):
        format_row(0.0, [1, 2, 3], "X")
    with pytest.raises(ValueError, match="finite"):
        format_row(0.0, [math.nan] * 6, "X")
    with pytest.raises(ValueError, match="comma"):
        format_row(0.0, [0] * 6, "A,B")
    with pytest.raises(ValueError, match="single line"):
        format_header({"note": "two\nlines"})
    assert canonical_label(" walking  upstairs ") == "WALKING_UPSTAIRS"
    assert canonical_label("sit-to-stand") == "SIT_TO_STAND"


def test_folder_of_recordings(tmp_path: Path) -> None:
    a = _write(
        tmp_path / "subject3_walk.csv",
        ["WALKING"] * 20 + [""] * 5 + ["jumping"] * 12,
        meta={"sample_rate_hz": 50, "units": "acc=g gyro=rad/s"},
    )
    b = _write(tmp_path / "day2" / "s07_mixed.csv", ["Sitting"] * 10 + ["jogging"] * 10, seed=1)
    c = _write(tmp_path / "morning.csv", ["JUMPING"] * 9, meta={"subject": 5}, seed=2)
    d = _write(tmp_path / "anon.csv", ["WALKING"] * 8, seed=3)

    ds = load_dataset(f"csv:{tmp_path}")
    assert ds.name == f"csv:{tmp_path.resolve()}"
    assert ds.sample_rate_hz == 50.0
    # HAPT names keep their ids; others get 101.. in sorted order.
    assert ds.label_names == {1: "WALKING", 4: "SITTING", 101: "JOGGING", 102: "JUMPING"}
    assert ds.default_activities == (1, 4, 101, 102)
    by_session = {r.session: r for r in ds.recordings}
    assert sorted(by_session) == ["anon", "day2/s07_mixed", "morning", "subject3_walk"]
    assert by_session["subject3_walk"].subject == 3
    assert by_session["day2/s07_mixed"].subject == 7
    assert by_session["morning"].subject == 5
    anon = by_session["anon"].subject
    assert anon >= 10000 and anon == load_dataset(f"csv:{tmp_path}").recordings[0].subject  # stable
    for name, values in (("subject3_walk", a), ("day2/s07_mixed", b), ("morning", c), ("anon", d)):
        np.testing.assert_allclose(by_session[name].values, values, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(by_session["subject3_walk"].labels, [1] * 20 + [-1] * 5 + [102] * 12)
    np.testing.assert_array_equal(by_session["day2/s07_mixed"].labels, [4] * 10 + [101] * 10)

    assert load_dataset(ds.name).label_names == ds.label_names  # bundles reload from ds.name
    w = make_windows(ds, window=8, stride=4)
    assert w.labels == ["WALKING", "SITTING", "JOGGING", "JUMPING"]
    # WALKING 20 -> 4, JUMPING 12 -> 2 (s3); SITTING 10 -> 1, JOGGING 10 -> 1 (s7); JUMPING 9 -> 1; WALKING 8 -> 1.
    assert w.class_counts() == {"WALKING": 5, "SITTING": 1, "JOGGING": 1, "JUMPING": 3}


def test_units_are_converted(tmp_path: Path) -> None:
    path = tmp_path / "s1.csv"
    path.write_text(
        format_header({"units": "acc=m/s2 gyro=deg/s"})
        + format_row(0.0, [9.80665, 0, 0, 180, 0, 0], "STANDING")
        + format_row(0.02, [0, 0, 9.80665, 0, 90, 0], "STANDING")
    )
    session = read_csv_session(path)
    np.testing.assert_allclose(session.values[0], [1, 0, 0, math.pi, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(session.values[1], [0, 0, 1, 0, math.pi / 2, 0], rtol=1e-6)
    assert session.sample_rate_hz() == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("t_s,ax,ay,az,gx,gy,gz,label\n0,0,0,0,0,0,0,\n", r"bad\.csv:1: expected header"),
        (
            "# subject: 1\nt_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label\n0,0,0,0,0,0,0,WALKING\n0.02,0,x,0,0,0,0,\n",
            r"bad\.csv:4: not a number",
        ),
        (
            "t_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label\n0,0,0,0,0,0,\n",
            r"bad\.csv:2: expected 8 fields, got 7",
        ),
        (
            "t_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label\n1,0,0,0,0,0,0,\n0.5,0,0,0,0,0,0,\n",
            r"bad\.csv:3: t_s goes backwards",
        ),
        ("t_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label\n0,nan,0,0,0,0,0,\n", r"bad\.csv:2: non-finite"),
        ("t_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label\n", r"bad\.csv: no samples"),
        ("# only a comment\n", r"bad\.csv: no header"),
        (
            "# units: acc=furlongs\nt_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label\n0,0,0,0,0,0,0,\n",
            r"bad\.csv: unsupported '# units",
        ),
        (
            "# sample_rate_hz: fast\nt_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label\n0,0,0,0,0,0,0,\n",
            r"bad\.csv: '# sample_rate_hz: fast' is not a positive number",
        ),
    ],
)
def test_bad_file_names_file_and_line(body: str, message: str, tmp_path: Path) -> None:
    _write(tmp_path / "good.csv", ["WALKING"] * 4)
    (tmp_path / "bad.csv").write_text(body)
    with pytest.raises(DataError, match=message) as err:
        load_dataset(f"csv:{tmp_path}")
    assert "\n" not in str(err.value)


def test_mixed_sample_rates_are_refused(tmp_path: Path) -> None:
    _write(tmp_path / "a.csv", ["WALKING"] * 10, rate=50.0)
    _write(tmp_path / "b.csv", ["WALKING"] * 10, rate=50.0)
    _write(tmp_path / "c.csv", ["WALKING"] * 10, rate=100.0)
    with pytest.raises(DataError, match=r"c\.csv is at 100\.00 Hz but the folder is at 50\.00 Hz"):
        load_dataset(f"csv:{tmp_path}")


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no \\*.csv recordings"):
        load_dataset(f"csv:{tmp_path}")
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(f"csv:{tmp_path / 'missing'}")
