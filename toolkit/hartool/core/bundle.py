"""Model bundle: a folder with manifest.json, model.keras and artifacts; load, validate and update it atomically.

Bundles are copied around, so a manifest is untrusted input: every file it names (any ``"file"`` key, at any
depth: artifacts, the model, the enrolled head and its data, the embedding reference) must resolve inside
the bundle folder. :meth:`Bundle.file` is the one place that turns such a name into a path; ``load`` and
``save`` check every name up front, so an absolute path, a ``..`` or a symlink out is refused with one
line before anything is read, written or deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .atomic import atomic_write_json
from .errors import BundleError
from .orientation import ORIENTATIONS, orientation_mode
from .safetext import MAX_LABEL, safe_text

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
REQUIRED_KEYS = (
    "format_version",
    "labels",
    "channels",
    "sample_rate_hz",
    "window",
    "stride",
    "preprocessing",
    "training",
    "dataset",
    "metrics",
    "artifacts",
)
ARTIFACT_KEYS = ("name", "format", "mode", "file", "bytes", "sha256")
FILE_KEY = "file"  # the key file_entry() writes: every value under it, anywhere in a manifest, is a bundle file


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, streamed so big models don't need to fit in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate_manifest(manifest: Any, where: str) -> dict[str, Any]:
    """Check the manifest's shape; raise one clear BundleError naming ``where`` and the problem."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: manifest is not a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError(f"{where}: manifest lacks {', '.join(missing)}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{where}: manifest format_version {manifest['format_version']!r} is not supported "
            f"(this hartool reads {FORMAT_VERSION})"
        )
    labels, channels = manifest["labels"], manifest["channels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise BundleError(f"{where}: 'labels' must be a non-empty list of names")
    if not isinstance(channels, list) or not all(isinstance(c, dict) and "name" in c for c in channels):
        raise BundleError(f"{where}: 'channels' must be a list of {{name, unit}} objects")
    # Labels and channel names reach terminals, pages and MQTT topics: a copied bundle may not smuggle
    # control characters or megabytes into them.
    for name in [*labels, *(c["name"] for c in channels)]:
        if not isinstance(name, str) or not name or safe_text(name, MAX_LABEL) != name:
            raise BundleError(f"{where}: label or channel name {safe_text(name, MAX_LABEL)!r} is empty, longer "
                              f"than {MAX_LABEL} characters or holds control characters")
    for key in ("window", "stride"):
        if not isinstance(manifest[key], int) or manifest[key] <= 0:
            raise BundleError(f"{where}: '{key}' must be a positive integer")
    _validate_orientation(manifest, where)
    if not isinstance(manifest["artifacts"], list):
        raise BundleError(f"{where}: 'artifacts' must be a list")
    for entry in manifest["artifacts"]:
        if not isinstance(entry, dict) or any(k not in entry for k in ARTIFACT_KEYS):
            raise BundleError(f"{where}: artifact entry {entry!r} lacks one of {', '.join(ARTIFACT_KEYS)}")
    return manifest


def _validate_orientation(manifest: dict[str, Any], where: str) -> None:
    """The orientation section, when there is one: a known mode, and for ``free`` an upright reference that
    is a direction (three finite numbers, not all zero): a copied bundle must not turn every window to NaN."""
    section = manifest.get("orientation")
    if section is None:
        return
    if not isinstance(section, dict) or orientation_mode(manifest) not in ORIENTATIONS:
        raise BundleError(f"{where}: 'orientation' must be an object whose mode is one of {', '.join(ORIENTATIONS)}")
    reference = section.get("reference")
    if reference is None:
        return
    ok = (isinstance(reference, list) and len(reference) == 3
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e6 for v in reference)
          and sum(float(v) * float(v) for v in reference) > 1e-12)
    if not ok:
        raise BundleError(f"{where}: 'orientation.reference' must be three finite numbers, not all zero")


def manifest_files(manifest: Any, where: str = "manifest") -> list[tuple[str, Any]]:
    """(JSON path, value) of every ``"file"`` entry in the manifest, e.g. ``("artifacts[2].file", "m.tflite")``."""
    found: list[tuple[str, Any]] = []
    if isinstance(manifest, dict):
        for key, value in manifest.items():
            if key == FILE_KEY and not isinstance(value, (dict, list)):
                found.append((f"{where}.{key}", value))
            else:
                found.extend(manifest_files(value, f"{where}.{key}"))
    elif isinstance(manifest, list):
        for i, value in enumerate(manifest):
            found.extend(manifest_files(value, f"{where}[{i}]"))
    return found


def confine(root: Path, name: Any, what: str) -> Path:
    """``root / name`` if ``name`` is a relative file name that stays inside ``root``; else BundleError.

    Refused: anything but a non-empty string, NUL bytes, absolute paths (POSIX or Windows-style), ``..``
    parts, and names that leave the folder through a symlink (checked on the resolved path).
    """
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise BundleError(f"{root}: {what} {name!r} is not a file name; refusing the bundle")
    pure = PurePosixPath(name)
    if pure.is_absolute() or PureWindowsPath(name).is_absolute() or ".." in pure.parts \
            or ".." in PureWindowsPath(name).parts:
        raise BundleError(f"{root}: {what} {name!r} points outside the bundle (absolute path or '..'); "
                          "refusing the bundle")
    path = root / pure
    base = root.resolve()
    real = path.resolve()
    if real != base and base not in real.parents:
        raise BundleError(f"{root}: {what} {name!r} is a symlink out of the bundle (to {real}); refusing the bundle")
    return path


@dataclass
class Bundle:
    """A model bundle on disk. Every command after training takes one; the device needs nothing else."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Bundle:
        root = Path(path)
        if not root.is_dir():
            raise BundleError(f"{root}: not a bundle directory (run 'hartool train --out {root}' first)")
        mpath = root / MANIFEST
        if not mpath.is_file():
            raise BundleError(f"{root}: no {MANIFEST} (not a hartool bundle)")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{mpath}: corrupt manifest ({exc})") from exc
        bundle = cls(root, validate_manifest(manifest, str(mpath)))
        bundle.check_files()
        return bundle

    def save(self) -> Path:
        validate_manifest(self.manifest, str(self.path / MANIFEST))
        self.check_files()
        return atomic_write_json(self.path / MANIFEST, self.manifest)

    def check_files(self) -> None:
        """BundleError (one line) unless every file the manifest names stays inside the bundle."""
        for where, name in manifest_files(self.manifest):
            confine(self.path, name, where)

    def file(self, name: Any, what: str = "file") -> Path:
        """The path of a file the manifest names, confined to the bundle (see :func:`confine`)."""
        return confine(self.path, name, what)

    def entry_path(self, entry: dict[str, Any], what: str, verify: bool = True) -> Path:
        """The existing file of a ``file_entry`` dict; with ``verify``, its recorded bytes/sha256 must match.

        BundleError naming the file when it is missing or differs (a truncated copy, a half-written file).
        """
        path = self.file(entry.get(FILE_KEY), what)
        if not path.is_file():
            raise BundleError(f"{path}: {what} is missing (no such file)")
        if verify and "bytes" in entry and "sha256" in entry:
            if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
                raise BundleError(f"{path}: {what} is corrupt (size/sha256 differ from the manifest)")
        return path

    # Convenience views used by the runtime: the manifest stays the single source of truth.
    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def channels(self) -> list[dict[str, str]]:
        return list(self.manifest["channels"])

    @property
    def window(self) -> int:
        return int(self.manifest["window"])

    @property
    def stride(self) -> int:
        return int(self.manifest["stride"])

    @property
    def sample_rate_hz(self) -> float:
        return float(self.manifest["sample_rate_hz"])

    @property
    def preprocessing(self) -> dict[str, Any]:
        return dict(self.manifest["preprocessing"])

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        return list(self.manifest["artifacts"])

    def keras_path(self) -> Path:
        model = self.manifest.get("model") or {}
        path = self.file(model.get(FILE_KEY, "model.keras"), "model file")
        if not path.is_file():
            raise BundleError(f"{self.path}: bundle has no trained model ({path.name} missing)")
        return path

    def artifact(self, name: str) -> dict[str, Any]:
        for entry in self.manifest["artifacts"]:
            if entry["name"] == name:
                return entry
        known = ", ".join(a["name"] for a in self.manifest["artifacts"]) or "none; run 'hartool quantize'"
        raise BundleError(f"{self.path}: no artifact named {name!r} (artifacts: {known})")

    def artifact_path(self, entry: dict[str, Any], verify: bool = True) -> Path:
        """Path of an artifact's file; with ``verify``, its size and sha256 must match the manifest."""
        return self.entry_path(entry, f"artifact {entry['name']!r}", verify)

    def upsert_artifact(self, entry: dict[str, Any]) -> None:
        """Add or replace an artifact entry by name (keeps list order stable for re-runs)."""
        arts = self.manifest["artifacts"]
        for i, old in enumerate(arts):
            if old["name"] == entry["name"]:
                arts[i] = entry
                return
        arts.append(entry)

    def remove_artifact(self, name: str) -> None:
        self.manifest["artifacts"] = [a for a in self.manifest["artifacts"] if a["name"] != name]


def file_entry(path: Path, bundle_root: Path) -> dict[str, Any]:
    """The {file, bytes, sha256} part of an artifact entry for a file inside the bundle."""
    return {
        "file": path.relative_to(bundle_root).as_posix(),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }
