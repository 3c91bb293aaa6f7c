"""Enrollment's fitting: the head over reference and wearer embeddings, its gate, and the expected confusion.

numpy only: the embeddings come from the bundle's artifact (:func:`embed`); the head is
:class:`hartool.runtime.heads.Head`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.bundle import Bundle
from ..core.errors import BundleError
from .backends import Predictor
from .heads import FitParams, Head, _logsumexp, balanced_weights, fit_logistic

REFERENCE_FILE = "enroll_reference.npz"
KIND_NEW, KIND_PERSONAL = 0, 1
# Warn when the wearer's new activity would be read as an old one this often (or the reverse).
OVERLAP_WARN = 0.2
OLD_TAKEN_WARN = 0.05


@dataclass
class _Store:
    """The wearer's windows kept in the bundle (what the head is refitted from)."""

    # float32 (N, ...) preprocessed windows: kept exact, as the head is fitted on their embeddings (the
    # reference windows can be float16: they only describe the old classes' spread).
    x: np.ndarray
    label: np.ndarray  # int (N,) index into ``labels``
    kind: np.ndarray  # int8 (N,) KIND_NEW / KIND_PERSONAL
    labels: list[str]

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> _Store:
        return cls(np.empty((0, *shape), np.float32), np.empty(0, np.int64), np.empty(0, np.int8), [])

    def without(self, label: str, kind: int) -> _Store:
        if label not in self.labels:
            return self
        keep = ~((self.label == self.labels.index(label)) & (self.kind == kind))
        return _Store(self.x[keep], self.label[keep], self.kind[keep], self.labels)

    def plus(self, x: np.ndarray, label: str, kind: int) -> _Store:
        labels = self.labels if label in self.labels else [*self.labels, label]
        idx = np.full(len(x), labels.index(label), dtype=np.int64)
        return _Store(np.concatenate([self.x, x.astype(np.float32)]), np.concatenate([self.label, idx]),
                      np.concatenate([self.kind, np.full(len(x), kind, np.int8)]), labels)

    def labels_of(self, kind: int) -> list[str]:
        present = set(self.label[self.kind == kind].tolist())
        return [name for i, name in enumerate(self.labels) if i in present]


@dataclass
class _Reference:
    """Embeddings of the bundle's stored training-data windows (computed with the enrolling artifact)."""

    probs: np.ndarray
    emb: np.ndarray
    y: np.ndarray
    split: np.ndarray  # 0 = training subjects, 1 = validation subjects (never trained on)


def load_reference(bundle: Bundle, pred: Predictor) -> _Reference:
    """Embed the reference windows that quantize stored; BundleError when they are missing."""
    info = (bundle.manifest.get("embedding") or {}).get("reference") or {}
    path = bundle.file(info.get("file", REFERENCE_FILE), "embedding reference")
    if not path.is_file():
        raise BundleError(f"{bundle.path}: no enrollment reference windows ({path.name}); "
                          f"re-run 'hartool quantize {bundle.path}'")
    try:
        with np.load(path, allow_pickle=False) as ref:
            x, y, split = ref["x"], ref["y"].astype(np.int64), ref["split"].astype(np.int8)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path}: corrupt enrollment reference ({exc})") from exc
    return _Reference(*embed(pred, x), y, split)


def embed(pred: Predictor, x: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(probs, embeddings) of preprocessed windows, float32."""
    if not len(x):
        return np.empty((0, pred.n_classes), np.float32), np.empty((0, pred.embedding_dim or 0), np.float32)
    parts = [pred.predict_with_embedding(np.asarray(x[i : i + batch], np.float32)) for i in range(0, len(x), batch)]
    return np.concatenate([p for p, _ in parts]), np.concatenate([e for _, e in parts])


def _head_name(new_labels: list[str], personalized: bool) -> str:
    if new_labels and personalized:
        return "personalized+enrolled"
    return "personalized" if personalized else "enrolled"


@dataclass
class _Heldout:
    """Gate scores of one new class's windows, each half scored by a head fitted without it."""

    rows: np.ndarray  # indices into the store
    r: np.ndarray  # raw gate log-odds (before the gate bias)
    which: np.ndarray  # index of the winning new class (among the new ones)


def _gate_logodds(weights: np.ndarray, bias: np.ndarray, z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    logits = z @ weights.T + bias
    return _logsumexp(logits[:, k:]) - _logsumexp(logits[:, :k]), logits[:, k:].argmax(axis=1)


def _heldout_gate(z_ref: np.ndarray, y_ref: np.ndarray, z_store: np.ndarray, y_store: np.ndarray, n_cls: int,
                  k: int, params: FitParams) -> dict[int, _Heldout]:
    """Per new class: scores of its first half from a fit on its second half, and the reverse (2 fits each).

    The halves are contiguous, so the scores include the drift within one recording, as later use will.
    """
    out: dict[int, _Heldout] = {}
    for c in range(k, n_cls):
        rows = np.flatnonzero(y_store == c)
        r, which = np.full(len(rows), -np.inf), np.zeros(len(rows), np.int64)
        for held in (np.arange(len(rows) // 2), np.arange(len(rows) // 2, len(rows))):
            if len(held) == 0 or len(held) == len(rows):
                continue
            keep = np.setdiff1d(np.arange(len(y_store)), rows[held])
            z, y = np.concatenate([z_ref, z_store[keep]]), np.concatenate([y_ref, y_store[keep]])
            weights, bias = fit_logistic(z, y, n_cls, balanced_weights(y, n_cls), params)
            r[held], which[held] = _gate_logodds(weights, bias, z_store[rows[held]], k)
        out[c] = _Heldout(rows, r, which)
    return out


def fit_head(base_labels: list[str], ref: _Reference, store: _Store, store_emb: np.ndarray,
             params: FitParams) -> tuple[Head, dict[int, _Heldout]]:
    """Fit the head on reference + wearer embeddings and calibrate its gate; also the held-out gate scores.

    Gate bias: the stricter of (a) at most ``max_false_rate`` of validation-subject old windows pass and
    (b) only ``recall_keep`` of each new class's held-out windows pass. (b) is what keeps a wearer's own
    old activities intact: the gate opens no wider than the new activity needs.
    """
    k = len(base_labels)
    new_labels = store.labels_of(KIND_NEW)
    label_index = {name: i for i, name in enumerate([*base_labels, *new_labels])}
    # The wearer's windows of a base class (personalization) keep its index: they teach the gate too.
    y_store = np.array([label_index[store.labels[i]] for i in store.label], dtype=np.int64)
    n_cls = k + len(new_labels)
    # The gate is calibrated on the validation subjects: keep them out of its fit when there are any.
    fit_ref = ref.split == 0 if np.any(ref.split == 1) and np.any(ref.split == 0) else np.ones(len(ref.y), bool)
    emb_all = np.concatenate([ref.emb, store_emb])
    mean, scale = emb_all.mean(axis=0), emb_all.std(axis=0) + 1e-6
    z_ref, z_store = (ref.emb - mean) / scale, (store_emb - mean) / scale
    head = Head(name=_head_name(new_labels, bool(store.labels_of(KIND_PERSONAL))), base_labels=list(base_labels),
                new_labels=new_labels, mean=mean.astype(np.float32), scale=scale.astype(np.float32),
                weights=np.zeros((0, emb_all.shape[1]), np.float32), bias=np.zeros(0, np.float32))
    heldout: dict[int, _Heldout] = {}
    if new_labels:
        z, y = np.concatenate([z_ref[fit_ref], z_store]), np.concatenate([ref.y[fit_ref], y_store])
        head.weights, head.bias = fit_logistic(z, y, n_cls, balanced_weights(y, n_cls), params)
        r_val = _gate_logodds(head.weights, head.bias, z_ref[~fit_ref] if np.any(~fit_ref) else z_ref, k)[0]
        bias = min(0.0, -float(np.quantile(r_val, 1.0 - params.max_false_rate)))
        if params.recall_keep < 1.0:
            heldout = _heldout_gate(z_ref[fit_ref], ref.y[fit_ref], z_store, y_store, n_cls, k, params)
            # Each new class keeps its share: the most permissive of the per-class limits.
            limits = [-float(np.quantile(h.r[np.isfinite(h.r)], 1.0 - params.recall_keep))
                      for h in heldout.values() if np.isfinite(h.r).any()]
            if limits:
                bias = min(bias, max(limits))
        head.gate_bias = bias
    personal = store.kind == KIND_PERSONAL
    if personal.any():
        _personalize(head, z_ref, ref.y, z_store[personal], y_store[personal], params)
    return head, heldout


def _personalize(head: Head, z_ref: np.ndarray, y_ref: np.ndarray, z_user: np.ndarray, y_user: np.ndarray,
                 params: FitParams) -> None:
    """Old-class regression refitted with the wearer's windows weighted up; blended with the model's softmax."""
    k = len(head.base_labels)
    z = np.concatenate([z_ref, z_user])
    y = np.concatenate([y_ref, y_user])
    w = np.concatenate([balanced_weights(y_ref, k), params.personal_weight * balanced_weights(y_user, k)])
    head.personal_weights, head.personal_bias = fit_logistic(z, y, k, w, params)
    head.personal_blend = params.personal_blend


def expected_confusion(head: Head, heldout: dict[int, _Heldout], ref: _Reference, store_probs: np.ndarray,
                       label: str) -> dict[str, Any]:
    """How ``label`` will be confused: its held-out windows as the final gate reads them, and old windows taken for it."""
    labels, k = head.labels, len(head.base_labels)
    c = labels.index(label)
    out: dict[str, Any] = {}
    if c in heldout:
        h = heldout[c]
        s = 1.0 / (1.0 + np.exp(-np.clip(h.r + head.gate_bias, -60, 60)))
        p = store_probs[h.rows]
        new_wins = s > (1.0 - s) * p.max(axis=1)
        pred = np.where(new_wins, k + h.which, p.argmax(axis=1))
        counts = np.bincount(pred, minlength=len(labels))
        out["read_as"] = {labels[i]: float(n / len(pred)) for i, n in enumerate(counts) if n}
        out["recall"] = out["read_as"].get(label, 0.0)
    val = ref.split == 1 if np.any(ref.split == 1) else np.ones(len(ref.y), bool)
    pred = head.apply_batch(ref.emb[val], ref.probs[val]).argmax(axis=1)
    out["old_taken"] = {name: float(np.mean(pred[ref.y[val] == i] == c))
                        for i, name in enumerate(head.base_labels) if np.any(ref.y[val] == i)}
    return out


def overlap_warnings(label: str, expected: dict[str, Any]) -> list[str]:
    """One line per serious overlap between ``label`` and an old activity, with the expected confusion."""
    out = []
    read_as = {k: v for k, v in expected.get("read_as", {}).items() if k != label}
    taken = expected.get("old_taken", {})
    for name in sorted(set(read_as) | set(taken)):
        a, b = read_as.get(name, 0.0), taken.get(name, 0.0)
        if a >= OVERLAP_WARN or b >= OLD_TAKEN_WARN:
            out.append(f"warning: {label} overlaps {name}: expect about {a:.0%} of {label} windows read as {name} "
                       f"and {b:.0%} of {name} windows read as {label}")
    return out
