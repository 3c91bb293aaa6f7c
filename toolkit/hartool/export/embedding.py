"""After quantize: record which artifacts carry the embedding output, and store reference windows for enrollment.

Enrollment on the device has no training data and no TensorFlow. It needs (1) an artifact with the
embedding output (train/embedding.py adds it at conversion) and (2) a sample of the training data's
windows, so a head fitted on the wearer's new activity can be balanced against the old ones and
calibrated on people the network never saw. The reference windows are stored preprocessed (float16) in
``enroll_reference.npz``: any artifact, now or re-exported later, turns them into its own embeddings at
enrollment (a few thousand invokes: well under a second on a desktop).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.atomic import atomic_write_bytes
from ..core.bundle import Bundle, file_entry
from ..core.errors import HartoolError
from ..core.transform import InputTransform
from ..runtime.artifacts import contract
from ..runtime.backends import load_predictor

REFERENCE_FILE = "enroll_reference.npz"
EMBEDDING_KEY = "embedding"
# Reference windows per class and split; 200 + 200 windows x 5 classes x 128 x 6 float16 ~ 3 MB.
REFERENCE_PER_CLASS = 200
SPLIT_TRAIN, SPLIT_VAL = 0, 1


def _subject_ids(ds: Any, dataset: dict[str, Any], key: str) -> list[int]:
    names = dataset.get(f"{key}_subject_names")
    if names is not None:
        from ..data.splits import resolve_subjects

        return resolve_subjects(ds, names, f"manifest {key} subjects")
    return [int(s) for s in dataset.get(f"{key}_subjects", [])]


def _balanced_pick(y: np.ndarray, subject: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``per_class`` windows of each class, spread evenly over the subjects that have it."""
    picks = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        # Round-robin over subjects after a seeded shuffle: every person contributes, none dominates.
        rng.shuffle(idx)
        ranks = np.empty(len(idx), dtype=np.int64)
        for s in np.unique(subject[idx]):
            members = np.flatnonzero(subject[idx] == s)
            ranks[members] = np.arange(len(members))
        picks.append(idx[np.argsort(ranks, kind="stable")[:per_class]])
    return np.sort(np.concatenate(picks)) if picks else np.empty(0, dtype=np.int64)


def reference_windows(manifest: dict[str, Any], per_class: int = REFERENCE_PER_CLASS,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Model input of windows from the training and validation subjects, balanced per class, through the
    bundle's input transform (calibrated as training and the stream calibrate, for `--orientation free`)."""
    from ..data import load_dataset, make_windows

    dataset = manifest["dataset"]
    transform = InputTransform(manifest)
    ds = load_dataset(dataset["name"])
    windows = make_windows(transform.dataset(ds), manifest["window"], manifest["stride"], labels=manifest["labels"])
    rng = np.random.default_rng(seed)
    xs, ys, subs, splits = [], [], [], []
    for tag, key in ((SPLIT_TRAIN, "train"), (SPLIT_VAL, "val")):
        part = windows.subset(np.isin(windows.subject, _subject_ids(ds, dataset, key)))
        if not len(part):
            continue
        pick = _balanced_pick(part.y, part.subject, per_class, rng)
        xs.append(transform.preprocess(part.x[pick]).astype(np.float16))
        ys.append(part.y[pick].astype(np.int16))
        subs.append(part.subject[pick].astype(np.int32))
        splits.append(np.full(len(pick), tag, dtype=np.int8))
    if not xs:
        raise HartoolError("no training windows to store as enrollment reference")
    return {"x": np.concatenate(xs), "y": np.concatenate(ys), "subject": np.concatenate(subs),
            "split": np.concatenate(splits), "labels": np.asarray(manifest["labels"])}


def record_embedding(bundle: Bundle, artifact_names: list[str], say: Callable[[str], None],
                     per_class: int = REFERENCE_PER_CLASS, seed: int = 0) -> dict[str, Any] | None:
    """Write the reference windows and the manifest's ``embedding`` entry (not saved: the caller saves).

    Returns the entry, or None (and removes a stale one) when no artifact has an embedding output.
    """
    m = bundle.manifest
    dims: dict[str, int] = {}
    for name in artifact_names:
        entry = bundle.artifact(name)
        try:
            # The bundle's own input contract: a feature model (--arch features) takes its feature vector.
            pred = load_predictor(bundle.artifact_path(entry), **contract(m))
        except HartoolError:
            continue  # not loadable here: quantize already reported it
        if pred.embedding_dim:
            dims[name] = int(pred.embedding_dim)
    if not dims:
        m.pop(EMBEDDING_KEY, None)
        return None
    say(f"storing enrollment reference windows ({per_class} per class and split)")
    ref = reference_windows(m, per_class, seed)
    buf = io.BytesIO()
    np.savez_compressed(buf, **ref)
    path = atomic_write_bytes(bundle.path / REFERENCE_FILE, buf.getvalue())
    m[EMBEDDING_KEY] = {
        "source": "input of the 'probs' layer (second model output)",
        "dim": max(dims.values()),
        "artifacts": dims,
        "reference": {**file_entry(path, bundle.path), "windows": int(len(ref["y"])),
                      "per_class": per_class, "splits": {"train": int((ref["split"] == SPLIT_TRAIN).sum()),
                                                         "val": int((ref["split"] == SPLIT_VAL).sum())}},
    }
    return m[EMBEDDING_KEY]
