"""On-device enrollment: teach a bundle a new activity, or adapt it to its wearer, with numpy and the interpreter only.

``enroll(bundle, EnrollOptions(SourceSpec(port), label=...))`` reads ``seconds`` of samples from any source
``stream`` reads (device, listener, recorded CSV), cuts them into densely overlapping windows, embeds
them with the bundle's artifact (its second output), and refits the bundle's head
(:mod:`hartool.runtime.heads`) on the stored reference windows plus everything the wearer taught so far.
Reading and cutting the samples live in :mod:`.enroll_source`, the fitting in :mod:`.enroll_fit`; this
module keeps the bundle storage and the public API.

Bundle files written (new names each time, so a crash leaves the old head in force):
``enroll-<id>.npz`` (the wearer's preprocessed windows and their labels: what lets ``--remove`` and
``--replace`` refit without the device re-recording) and ``head-<id>.npz`` (the fitted head); the
manifest's ``head`` entry, written last and atomically, is what makes them current.
"""

from __future__ import annotations

import getpass
import io
import os
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import atomic_write_bytes
from ..core.bundle import Bundle, file_entry
from ..core.csvformat import canonical_label
from ..core.errors import BundleError, DataError, HartoolError
from ..core.transform import InputTransform
from .backends import Predictor
from .enroll_fit import (
    KIND_NEW,
    KIND_PERSONAL,
    _Heldout,
    _Reference,
    _Store,
    embed,
    expected_confusion,
    fit_head,
    load_reference,
    overlap_warnings,
)
from .enroll_source import EnrollOptions, cut_windows, read_labelled, read_samples, require_embedding
from .heads import HEAD_KEY, FitParams, Head


@dataclass
class EnrollResult:
    """What enrollment did: the head now in force, warnings (overlap) and timings."""

    bundle: Path
    head: dict[str, Any] | None
    added: list[str]
    windows: int
    seconds: float
    expected: dict[str, Any]
    warnings: list[str]
    elapsed_s: float
    # CPU time of this process: what the wall time would be on an idle machine (the 2 shared cores are not).
    cpu_s: float = 0.0


# --- bundle storage -----------------------------------------------------------------------------------

def _load_store(bundle: Bundle) -> _Store:
    desc = bundle.manifest.get(HEAD_KEY) or {}
    data = desc.get("data") or {}
    if not data.get("file"):
        return _Store.empty(InputTransform(bundle.manifest).input_shape)
    path = bundle.entry_path(data, "enrollment data")
    try:
        with np.load(path, allow_pickle=False) as f:
            return _Store(f["x"], f["label"].astype(np.int64), f["kind"].astype(np.int8), [str(v) for v in f["labels"]])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path}: enrollment data missing or corrupt ({exc})") from exc


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _commit(bundle: Bundle, head: Head | None, store: _Store, entry: dict[str, Any]) -> dict[str, Any] | None:
    """Write the new head and data under fresh names, then the manifest (the commit), then drop the old files."""
    old = bundle.manifest.get(HEAD_KEY) or {}
    old_files = [f for f in (old.get("file"), (old.get("data") or {}).get("file")) if f]
    written: list[Path] = []
    try:
        if head is None:
            bundle.manifest.pop(HEAD_KEY, None)
        else:
            token = uuid.uuid4().hex[:10]
            data_path = atomic_write_bytes(bundle.path / f"enroll-{token}.npz", _npz_bytes(
                x=store.x, label=store.label, kind=store.kind, labels=np.asarray(store.labels)))
            written.append(data_path)
            head_file = atomic_write_bytes(bundle.path / f"head-{token}.npz", _npz_bytes(**head.arrays()))
            written.append(head_file)
            bundle.manifest[HEAD_KEY] = {**head.describe(), **entry, **file_entry(head_file, bundle.path),
                                         "data": file_entry(data_path, bundle.path)}
        bundle.save()
    except BaseException:
        for path in written:  # the manifest still names the old files: these are orphans
            path.unlink(missing_ok=True)
        bundle.manifest[HEAD_KEY] = old
        if not old:
            bundle.manifest.pop(HEAD_KEY, None)
        raise
    for name in old_files:
        path = bundle.file(name, "old enrollment file")  # confined: never delete outside the bundle
        if path not in written:
            path.unlink(missing_ok=True)
    return bundle.manifest.get(HEAD_KEY)


def _history(old: dict[str, Any], key: str, drop: set[str]) -> list[dict[str, Any]]:
    return [h for h in old.get(key, []) if h.get("label") not in drop]


def _refit(bundle: Bundle, pred: Predictor, store: _Store, params: FitParams) -> tuple[Head | None, np.ndarray,
                                                                                         dict[int, _Heldout], _Reference]:
    ref = load_reference(bundle, pred)
    store_probs, store_emb = embed(pred, store.x)
    if not len(store.label):
        return None, store_probs, {}, ref
    head, heldout = fit_head(bundle.labels, ref, store, store_emb, params)
    return head, store_probs, heldout, ref


# --- public API ---------------------------------------------------------------------------------------

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _who(opts: EnrollOptions) -> str:
    if opts.by:
        return opts.by
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def _check_length(n_samples: int, bundle: Bundle, source: str, min_seconds: float, what: str) -> None:
    """Fatal one-liner for an empty or too-short recording (fewer than ``min_seconds`` or one window)."""
    rate = bundle.sample_rate_hz
    need = max(min_seconds * rate, bundle.window)
    if not n_samples:
        raise DataError(f"{source}: no samples for {what} (empty recording)")
    if n_samples < need:
        raise DataError(f"{source}: {what} recording too short: {n_samples / rate:.1f} s, "
                        f"need at least {need / rate:.1f} s")


def _check_new_label(bundle: Bundle, label: str, opts: EnrollOptions, store: _Store) -> None:
    if label in bundle.labels:
        raise HartoolError(f"{label} is one of the model's own activities; use --personalize to adapt it "
                           "to this wearer")
    if label in store.labels_of(KIND_NEW) and not opts.replace:
        raise HartoolError(f"{label} is already enrolled (use --replace to enroll it again, or --remove {label})")


def _new_class_windows(bundle: Bundle, label: str, opts: EnrollOptions, loaded: tuple[dict[str, Any], Predictor],
                       on_status: Callable[[str], None] | None) -> tuple[np.ndarray, float]:
    segments = read_samples(opts.source, bundle, opts.seconds, opts, loaded, on_status)
    n = sum(len(seg) for seg in segments)
    _check_length(n, bundle, opts.source.port, opts.min_seconds, label)
    return _windows_of(segments, bundle), n / bundle.sample_rate_hz


def _windows_of(segments: list[np.ndarray], bundle: Bundle) -> np.ndarray:
    """Windows of every continuous segment (none spans a hole between two of them)."""
    parts = [cut_windows(seg, bundle) for seg in segments]
    return np.concatenate(parts) if parts else np.empty((0, *InputTransform(bundle.manifest).input_shape), np.float32)


def _personal_windows(bundle: Bundle, opts: EnrollOptions, loaded: tuple[dict[str, Any], Predictor],
                      on_status: Callable[[str], None] | None) -> dict[str, tuple[np.ndarray, float]]:
    """label -> (windows, seconds) from a labelled CSV (file or folder), or the whole recording as --label."""
    source = Path(opts.source.port)
    wanted = canonical_label(opts.label) if opts.label else None
    if source.exists() and (source.is_dir() or source.suffix.lower() == ".csv"):
        runs = read_labelled(source, bundle)
        if wanted:
            runs = [(lab, s) for lab, s in runs if lab == wanted]
    elif wanted:
        runs = [(wanted, seg) for seg in read_samples(opts.source, bundle, opts.seconds, opts, loaded, on_status)]
    else:
        raise HartoolError("--personalize needs a labelled CSV recording (or folder), or --label for a live source")
    unknown = sorted({lab for lab, _ in runs} - set(bundle.labels))
    if unknown:
        raise HartoolError(f"{opts.source.port}: labels {', '.join(unknown)} are not activities of this bundle "
                           f"({', '.join(bundle.labels)}); enroll new ones without --personalize")
    out: dict[str, tuple[np.ndarray, float]] = {}
    for lab in dict.fromkeys(lab for lab, _ in runs):
        parts = [cut_windows(s, bundle) for name, s in runs if name == lab]
        n = sum(len(s) for name, s in runs if name == lab)
        _check_length(n, bundle, opts.source.port, opts.min_seconds, lab)
        out[lab] = (np.concatenate(parts), n / bundle.sample_rate_hz)
    if not out:
        raise DataError(f"{opts.source.port}: no labelled samples to personalize with (empty recording)")
    return out


def _check_recall(label: str, expected: dict[str, Any] | None, opts: EnrollOptions) -> None:
    """A head that would miss most of the new activity is not saved (the bundle stays as it was)."""
    recall = (expected or {}).get("recall")
    if recall is None or opts.force or recall >= opts.min_recall:
        return
    raise HartoolError(f"expected recall of {label}: {recall * 100:.0f} % (held-out half of the recording), under "
                       f"--min-recall {opts.min_recall * 100:.0f} %: nothing saved; record it longer or more "
                       "distinctly, or pass --force")


def enroll(bundle_dir: str | os.PathLike[str], opts: EnrollOptions,
           on_status: Callable[[str], None] | None = None) -> EnrollResult:
    """Enroll ``opts.label`` from ``opts.source`` (or personalize), refit the head and commit it to the bundle.

    ``on_status`` receives the live source's status lines (format, time unit, warnings), as `stream` shows them."""
    started, cpu = time.perf_counter(), time.process_time()
    bundle = Bundle.load(bundle_dir)
    store = _load_store(bundle)
    if not opts.personalize:
        if not opts.label:
            raise HartoolError("give --label NAME for the new activity")
        _check_new_label(bundle, canonical_label(opts.label), opts, store)
    entry, pred = require_embedding(bundle, opts.artifact)
    old = dict(bundle.manifest.get(HEAD_KEY) or {})
    who, when = _who(opts), _now()
    if opts.personalize:
        got = _personal_windows(bundle, opts, (entry, pred), on_status)
        for lab, (windows, _) in got.items():
            store = store.without(lab, KIND_PERSONAL).plus(windows, lab, KIND_PERSONAL)
        personal = _history(old, "personalization", set(got)) + [
            {"label": lab, "by": who, "at": when, "source": opts.source.port, "seconds": round(sec, 1),
             "windows": len(w)} for lab, (w, sec) in got.items()]
        enrolled, added = old.get("enrolled", []), list(got)
    else:
        label = canonical_label(str(opts.label))
        windows, seconds = _new_class_windows(bundle, label, opts, (entry, pred), on_status)
        store = store.without(label, KIND_NEW).plus(windows, label, KIND_NEW)
        got = {label: (windows, seconds)}
        enrolled = _history(old, "enrolled", {label}) + [
            {"label": label, "by": who, "at": when, "source": opts.source.port, "seconds": round(seconds, 1),
             "windows": len(windows)}]
        personal, added = old.get("personalization", []), [label]
    head, store_probs, heldout, ref = _refit(bundle, pred, store, opts.params)
    assert head is not None  # the store has at least the windows just added
    expected, warnings = {}, []
    if not opts.personalize:
        expected[added[0]] = expected_confusion(head, heldout, ref, store_probs, added[0])
        warnings = overlap_warnings(added[0], expected[added[0]])
        _check_recall(added[0], expected[added[0]], opts)
    meta = {"artifact": entry["name"], "enrolled": enrolled, "personalization": personal, "updated": when,
            "params": {k: getattr(opts.params, k) for k in opts.params.__dataclass_fields__},
            "expected": {**old.get("expected", {}), **expected}}
    committed = _commit(bundle, head, store, meta)
    windows = sum(len(w) for w, _ in got.values())
    seconds = sum(s for _, s in got.values())
    return EnrollResult(bundle.path, committed, added, windows, seconds, expected, warnings,
                        time.perf_counter() - started, time.process_time() - cpu)


def remove(bundle_dir: str | os.PathLike[str], label: str, params: FitParams | None = None) -> EnrollResult:
    """Undo what was taught for ``label`` (an enrolled activity or a personalized one) and refit."""
    started = time.perf_counter()
    bundle = Bundle.load(bundle_dir)
    old = dict(bundle.manifest.get(HEAD_KEY) or {})
    store = _load_store(bundle)
    label = canonical_label(label)
    kinds = [k for k in (KIND_NEW, KIND_PERSONAL) if label in store.labels_of(k)]
    if not kinds:
        taught = store.labels_of(KIND_NEW) + [f"{x} (personalized)" for x in store.labels_of(KIND_PERSONAL)]
        raise HartoolError(f"{label} was not enrolled in {bundle.path} (taught: {', '.join(taught) or 'nothing'})")
    for kind in kinds:
        store = store.without(label, kind)
    params = params or FitParams(**(old.get("params") or {}))
    head = None
    if len(store.label):
        # The artifact the head was fitted with, unless quantize has since replaced it: then the default.
        known = {a["name"] for a in bundle.artifacts}
        entry, pred = require_embedding(bundle, old.get("artifact") if old.get("artifact") in known else None)
        head = _refit(bundle, pred, store, params)[0]
    else:
        entry = {"name": old.get("artifact")}
    meta = {"artifact": entry["name"], "enrolled": _history(old, "enrolled", {label}),
            "personalization": _history(old, "personalization", {label}), "updated": _now(),
            "params": old.get("params", {}), "expected": {k: v for k, v in old.get("expected", {}).items()
                                                         if k != label}}
    committed = _commit(bundle, head, store, meta)
    return EnrollResult(bundle.path, committed, [], 0, 0.0, {}, [], time.perf_counter() - started)


def list_enrolled(bundle_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What was taught to the bundle: enrolled activities and personalization, who and when."""
    bundle = Bundle.load(bundle_dir)
    desc = bundle.manifest.get(HEAD_KEY) or {}
    return {"bundle": str(bundle.path), "labels": bundle.labels, "head": desc.get("name"),
            "artifact": desc.get("artifact"), "enrolled": desc.get("enrolled", []),
            "personalization": desc.get("personalization", []), "expected": desc.get("expected", {}),
            "embedding": bool((bundle.manifest.get("embedding") or {}).get("artifacts"))}
