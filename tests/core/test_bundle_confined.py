"""Bundles are confined: a manifest that names a file outside its folder is refused before anything is touched.

A copied bundle is untrusted input. Every file name in its manifest (artifacts, the model, the enrolled head,
its data, the embedding reference) must resolve inside the bundle folder: absolute paths, ``..`` and symlinks
out are refused with one line by ``Bundle.load`` itself, so `stream`, `enroll --remove` and `benchmark` never
read, run or delete the file. A sentinel outside the bundle proves it stays untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from hartool.cli import cli
from hartool.core.bundle import Bundle, file_entry, manifest_files
from hartool.core.errors import BundleError
from hartool.runtime.heads import load_head

SENTINEL = b"do not touch\n"
LABELS = ["WALKING", "SITTING"]


def _manifest() -> dict[str, Any]:
    return {"format_version": 1, "labels": LABELS, "channels": [{"name": "acc_x", "unit": "g"}],
            "sample_rate_hz": 50.0, "window": 8, "stride": 4, "preprocessing": {}, "training": {},
            "dataset": {}, "metrics": {"test": {"accuracy": 0.9}},
            "model": {"format": "keras", "file": "model.keras", "bytes": 1, "sha256": "0" * 64},
            "artifacts": [{"name": "tflite-int8", "format": "tflite", "mode": "int8", "file": "model_int8.tflite",
                           "bytes": 1, "sha256": "0" * 64}],
            "embedding": {"artifacts": {"tflite-int8": 4}, "reference": {"file": "enroll_reference.npz"}},
            "head": {"name": "enrolled", "base_labels": LABELS, "new_labels": ["BRUSHING"], "file": "head-x.npz",
                     "bytes": 1, "sha256": "0" * 64,
                     "data": {"file": "enroll-x.npz", "bytes": 1, "sha256": "0" * 64},
                     "enrolled": [{"label": "BRUSHING"}]}}


# Where a hostile manifest can name a file, and how to set it.
SLOTS = {
    "artifact": lambda m, v: m["artifacts"][0].__setitem__("file", v),
    "model": lambda m, v: m["model"].__setitem__("file", v),
    "head": lambda m, v: m["head"].__setitem__("file", v),
    "head data": lambda m, v: m["head"]["data"].__setitem__("file", v),
    "embedding reference": lambda m, v: m["embedding"]["reference"].__setitem__("file", v),
}


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A sentinel file next to (not inside) the bundle folder."""
    path = tmp_path / "elsewhere" / "sentinel.bin"
    path.parent.mkdir()
    path.write_bytes(SENTINEL)
    return path


def _hostile_bundle(tmp_path: Path, outside: Path, slot: str, kind: str) -> Path:
    root = tmp_path / "bundle"
    root.mkdir()
    if kind == "absolute":
        name = str(outside)
    elif kind == "dotdot":
        name = f"../{outside.parent.name}/{outside.name}"
    else:  # a symlink inside the bundle that points out of it
        (root / "innocent.bin").symlink_to(outside)
        name = "innocent.bin"
    manifest = _manifest()
    SLOTS[slot](manifest, name)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _untouched(outside: Path, mtime: int) -> None:
    assert outside.read_bytes() == SENTINEL
    assert outside.stat().st_mtime_ns == mtime


def test_manifest_files_finds_every_file_entry() -> None:
    found = dict(manifest_files(_manifest()))
    assert found == {"manifest.model.file": "model.keras", "manifest.artifacts[0].file": "model_int8.tflite",
                     "manifest.embedding.reference.file": "enroll_reference.npz",
                     "manifest.head.file": "head-x.npz", "manifest.head.data.file": "enroll-x.npz"}


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink"])
@pytest.mark.parametrize("slot", sorted(SLOTS))
def test_load_refuses_names_outside(tmp_path: Path, outside: Path, slot: str, kind: str) -> None:
    root = _hostile_bundle(tmp_path, outside, slot, kind)
    with pytest.raises(BundleError) as err:
        Bundle.load(root)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{root}: manifest.")
    assert ("symlink out of the bundle" if kind == "symlink" else "points outside the bundle") in msg
    assert outside.read_bytes() == SENTINEL


@pytest.mark.parametrize("name", ["", "   ", "a\x00b", 7, None, "C:\\Windows\\x", "sub\\..\\..\\x"])
def test_file_refuses_non_names(tmp_path: Path, name: Any) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest()))
    bundle = Bundle.load(tmp_path)
    with pytest.raises(BundleError):
        bundle.file(name, "test file")


def test_names_inside_stay_usable(tmp_path: Path) -> None:
    """Sub-folders and symlinks that stay inside the bundle are fine."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.tflite").write_bytes(b"x")
    (tmp_path / "alias.tflite").symlink_to(tmp_path / "sub" / "m.tflite")
    manifest = _manifest()
    manifest["artifacts"][0]["file"] = "alias.tflite"
    manifest["model"]["file"] = "sub/./m.tflite"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    bundle = Bundle.load(tmp_path)
    assert bundle.file("sub/m.tflite") == tmp_path / "sub" / "m.tflite"
    assert bundle.keras_path() == tmp_path / "sub" / "m.tflite"


def test_save_refuses_a_manifest_naming_outside(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest()))
    bundle = Bundle.load(tmp_path)
    before = (tmp_path / "manifest.json").read_bytes()
    bundle.manifest["artifacts"][0]["file"] = str(outside)
    with pytest.raises(BundleError, match="points outside the bundle"):
        bundle.save()
    assert (tmp_path / "manifest.json").read_bytes() == before


COMMANDS = {
    "stream": lambda root, tmp: ["stream", str(root), "--port", str(tmp / "rec.csv")],
    "enroll --remove": lambda root, tmp: ["enroll", str(root), "--remove", "BRUSHING"],
    "benchmark": lambda root, tmp: ["benchmark", str(root), "--out", str(tmp / "bench.json")],
}


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink"])
@pytest.mark.parametrize("slot", ["artifact", "head", "head data"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cli_refuses_hostile_bundle(tmp_path: Path, outside: Path, command: str, slot: str, kind: str) -> None:
    root = _hostile_bundle(tmp_path, outside, slot, kind)
    (tmp_path / "rec.csv").write_text("0.1,0.2,0.3\n")
    mtime = outside.stat().st_mtime_ns
    result = CliRunner().invoke(cli, COMMANDS[command](root, tmp_path))
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {root}: manifest."), result.output
    _untouched(outside, mtime)
    assert not (tmp_path / "bench.json").exists()


def _npz(path: Path, **arrays: np.ndarray) -> None:
    np.savez(path, **arrays)


def _headed_bundle(tmp_path: Path) -> Bundle:
    """A bundle whose head file is a valid 2 + 1 label head over a 4-d embedding."""
    root = tmp_path / "b"
    root.mkdir()
    _npz(root / "head-x.npz", mean=np.zeros(4, np.float32), scale=np.ones(4, np.float32),
         weights=np.zeros((3, 4), np.float32), bias=np.zeros(3, np.float32))
    manifest = _manifest()
    manifest["head"].update(file_entry(root / "head-x.npz", root))
    (root / "manifest.json").write_text(json.dumps(manifest))
    return Bundle.load(root)


def test_head_loads_when_intact(tmp_path: Path) -> None:
    head = load_head(_headed_bundle(tmp_path))
    assert head is not None and head.labels == [*LABELS, "BRUSHING"]


def test_truncated_head_is_one_line(tmp_path: Path) -> None:
    bundle = _headed_bundle(tmp_path)
    path = bundle.path / "head-x.npz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(BundleError) as err:
        load_head(bundle)
    assert str(err.value) == f"{path}: enrolled head file is corrupt (size/sha256 differ from the manifest)"


@pytest.mark.parametrize("damage", ["truncated", "wrong shapes", "not an npz"])
def test_corrupt_head_without_checksum_is_one_line(tmp_path: Path, damage: str) -> None:
    """A head whose manifest entry matches a damaged file (hand-edited) still fails with one line naming it."""
    bundle = _headed_bundle(tmp_path)
    path = bundle.path / "head-x.npz"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "wrong shapes":
        _npz(path, mean=np.zeros(4, np.float32), scale=np.ones(4, np.float32),
             weights=np.zeros((2, 5), np.float32), bias=np.zeros(3, np.float32))
    else:
        with open(path, "wb") as fh:
            np.save(fh, np.zeros(3))
    bundle.manifest["head"].update(file_entry(path, bundle.path))
    with pytest.raises(BundleError) as err:
        load_head(bundle)
    msg = str(err.value)
    assert msg.startswith(f"{path}: corrupt enrolled head (") and "\n" not in msg


@pytest.mark.parametrize("label", ["SIT\x1b]0;x\x07", "A" * 101, "", "WALK\u202eKLAW"])
def test_labels_with_controls_or_megabytes_are_refused(tmp_path: Path, label: str) -> None:
    manifest = _manifest()
    manifest["labels"] = ["WALKING", label]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as err:
        Bundle.load(tmp_path)
    assert "\x1b" not in str(err.value) and "label or channel name" in str(err.value)


def test_head_with_a_hostile_new_label_is_one_line(tmp_path: Path) -> None:
    bundle = _headed_bundle(tmp_path)
    bundle.manifest["head"]["new_labels"] = ["BRUSH\x1b[2J"]
    with pytest.raises(BundleError, match="corrupt enrolled head .*control characters"):
        load_head(bundle)


def _one_error_line(proc) -> str:  # type: ignore[no-untyped-def]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    return lines[-1]


def test_real_bundle_truncated_head_and_artifact_symlinked_out(bundle_copy: Path, tmp_path: Path) -> None:
    """Through the real `hartool stream` on a real quantized bundle: a truncated enrolled head (a BadZipFile
    traceback before) and an artifact that is a symlink to a file outside are one line each."""
    from hartool_testing import hartool

    (tmp_path / "rec.csv").write_text("0.1,0.2,0.3,0.1,0.2,0.3\n" * 10)
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    head = bundle_copy / "head-x.npz"
    np.savez(head, mean=np.zeros(4, np.float32), scale=np.ones(4, np.float32),
             weights=np.zeros((7, 4), np.float32), bias=np.zeros(7, np.float32))
    head.write_bytes(head.read_bytes()[:100])
    manifest["head"] = {"name": "enrolled", "base_labels": manifest["labels"], "new_labels": ["BRUSHING"],
                        **file_entry(head, bundle_copy)}
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    args = ("stream", str(bundle_copy), "--port", str(tmp_path / "rec.csv"), "--artifact", "tflite-int8")
    line = _one_error_line(hartool(*args, check=False))
    assert line.startswith(f"Error: {head}: corrupt enrolled head (")

    del manifest["head"]
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    outside = tmp_path / "outside.tflite"
    model = bundle_copy / "model_int8.tflite"
    outside.write_bytes(model.read_bytes())      # same bytes: the sha256 in the manifest matches
    mtime = outside.stat().st_mtime_ns
    model.unlink()
    model.symlink_to(outside)
    for cmd in (args, ("benchmark", str(bundle_copy), "--artifacts", "tflite-int8", "--out", str(tmp_path / "b.json"))):
        line = _one_error_line(hartool(*cmd, check=False))
        assert "is a symlink out of the bundle" in line and line.startswith(f"Error: {bundle_copy}: manifest.artifacts[")
    assert outside.stat().st_mtime_ns == mtime and not (tmp_path / "b.json").exists()


def test_personalize_only_head_loads(tmp_path: Path) -> None:
    """A head with no new labels has an empty gate regression (0, D) and personal weights (K, D)."""
    bundle = _headed_bundle(tmp_path)
    path = bundle.path / "head-x.npz"
    _npz(path, mean=np.zeros(4, np.float32), scale=np.ones(4, np.float32), weights=np.zeros((0, 4), np.float32),
         bias=np.zeros(0, np.float32), personal_weights=np.zeros((2, 4), np.float32),
         personal_bias=np.zeros(2, np.float32))
    bundle.manifest["head"].update({"new_labels": [], **file_entry(path, bundle.path)})
    head = load_head(bundle)
    assert head is not None and head.labels == LABELS and head.personal_weights is not None


@pytest.mark.parametrize("section", ["free", ["free"], {"mode": "sideways"}, {"mode": "free", "reference": [0, 0, 0]},
                                     {"mode": "free", "reference": [1.0, "x", 0.0]},
                                     {"mode": "free", "reference": [float("nan"), 0.0, 1.0]},
                                     {"mode": "free", "reference": [1e309, 0.0, 0.0]},
                                     {"mode": "free", "reference": [1.0, 0.0]},
                                     {"mode": "free", "reference": [True, False, False]}])
def test_a_hostile_orientation_section_is_one_line(tmp_path: Path, section: Any) -> None:
    """The calibrator turns every window by the manifest's reference: a zero or NaN one would make every window
    NaN (a silent total loss), a wrong type a traceback. Both are refused when the bundle loads."""
    manifest = _manifest() | {"orientation": section}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))  # json writes NaN and 1e309 as NaN / Infinity
    with pytest.raises(BundleError) as err:
        Bundle.load(tmp_path)
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'manifest.json'}: 'orientation") and "\n" not in msg


@pytest.mark.parametrize("section", [None, {"mode": "fixed"}, {"mode": "free", "reference": [0.98, -0.16, -0.03]},
                                     {"mode": "free", "reference": [1, 0, 0]}, {"mode": "free"}])
def test_orientation_sections_hartool_writes_load(tmp_path: Path, section: Any) -> None:
    manifest = _manifest() | ({} if section is None else {"orientation": section})
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert Bundle.load(tmp_path).manifest.get("orientation") == section
