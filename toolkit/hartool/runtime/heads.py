"""Numpy heads fitted on the network's embedding: new activities and per-wearer adaptation, without TensorFlow.

A :class:`Head` sits after the interpreter: it takes the window's embedding and the model's own
probabilities and returns probabilities over the extended label list. How it keeps the old activities
intact (the hard part; a naive head costs them 3-7 pp):

- the old activities keep the model's own softmax, untouched, unless the head is personalized;
- a multinomial logistic regression over old + new classes, fitted on reference windows of the
  training data stored in the bundle (``enroll_reference.npz``) plus the wearer's windows, with
  class-balanced weights, decides only *whether* a window belongs to a new class: a gate
  ``s = sigmoid(logsumexp(new logits) - logsumexp(old logits) + gate_bias)``;
- ``gate_bias`` makes the gate as strict as the new activity allows: the stricter of (a) at most
  ``max_false_rate`` of the validation subjects' old-class windows (people the network never trained on)
  pass, and (b) only ``recall_keep`` of the wearer's own new-activity windows pass, each half of the
  recording scored by a fit on the other half (hartool.runtime.enroll.fit_head).

Output: ``[(1 - s) * old probs, s * softmax(new logits)]``. A personalized head replaces the old
probabilities with a blend of the model's and a logistic regression refitted with the wearer's windows.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.bundle import Bundle
from ..core.errors import BundleError
from ..core.safetext import MAX_LABEL, safe_text

HEAD_KEY = "head"  # manifest key of the enrolled head
MODEL_HEAD = "model"  # head name reported when the model's own softmax answered


@dataclass(frozen=True)
class FitParams:
    """Head hyperparameters, chosen on training/validation subjects (benchmarks/enroll.py --tune), never test ones."""

    l2: float = 1e-3
    iters: int = 300
    lr: float = 0.05
    # Share of validation-subject old-class windows that may be taken for a new class.
    max_false_rate: float = 0.01
    # Share of a new class's held-out enrollment windows the gate must still let through (1.0: no limit).
    recall_keep: float = 0.9
    # Weight of the wearer's windows against the reference ones when personalizing (per class, balanced).
    personal_weight: float = 3.0
    # Blend of the personalized distribution into the model's (0 = model only, 1 = head only), log space.
    # Validation subjects (benchmarks/enroll.py tune): 0.3 / 0.5 / 0.7 / 1.0 gained 3.2 / 4.5 / 6.2 / 7.4 pp.
    personal_blend: float = 1.0


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=-1, keepdims=True)))[..., 0]


def fit_logistic(z: np.ndarray, y: np.ndarray, n_classes: int, weight: np.ndarray | None = None,
                 params: FitParams = FitParams()) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (W (L, D), b (L,)) by full-batch Adam; deterministic (zero init).

    Standardized embeddings make one learning rate fit every model; ~300 steps on a few thousand windows
    take well under a second in numpy.
    """
    n, d = z.shape
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    w = w / w.sum()
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0
    params_ = [np.zeros((n_classes, d)), np.zeros(n_classes)]
    m = [np.zeros_like(p) for p in params_]
    v = [np.zeros_like(p) for p in params_]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, params.iters + 1):
        W, b = params_
        g_logits = (_softmax(z @ W.T + b) - onehot) * w[:, None]
        grads = [g_logits.T @ z + params.l2 * W, g_logits.sum(axis=0)]
        for i, g in enumerate(grads):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            params_[i] = params_[i] - params.lr * (m[i] / (1 - beta1**step)) / (np.sqrt(v[i] / (1 - beta2**step)) + eps)
    return params_[0].astype(np.float32), params_[1].astype(np.float32)


def balanced_weights(y: np.ndarray, n_classes: int, scale: np.ndarray | None = None) -> np.ndarray:
    """Per-sample weights giving every class the same total (times an optional per-class ``scale``)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    per_class = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    if scale is not None:
        per_class = per_class * scale
    return per_class[y]


@dataclass
class Head:
    """A fitted head: see the module docstring for the arithmetic. Arrays are float32."""

    name: str
    base_labels: list[str]
    new_labels: list[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (K + M, D) logistic regression over base + new classes
    bias: np.ndarray
    gate_bias: float = 0.0
    # Personalized old-class regression (K, D) / (K,), or None: the model's softmax is kept.
    personal_weights: np.ndarray | None = None
    personal_bias: np.ndarray | None = None
    personal_blend: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return [*self.base_labels, *self.new_labels]

    def _fused(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The weights with the standardization ``(e - mean) / scale`` folded in, computed once per fitted head.

        Fewer numpy calls per window: the head runs once per window after the interpreter, in Python.
        """
        key = (id(self.weights), id(self.bias), id(self.personal_weights), id(self.mean), id(self.scale))
        if getattr(self, "_fused_key", None) != key:
            inv = (1.0 / self.scale).astype(np.float32)
            w = (self.weights * inv).astype(np.float32)
            b = (self.bias - w @ self.mean).astype(np.float32)
            pw = pb = None
            if self.personal_weights is not None and self.personal_bias is not None:
                pw = (self.personal_weights * inv).astype(np.float32)
                pb = (self.personal_bias - pw @ self.mean).astype(np.float32)
            self._fused_cache = (w, b, pw, pb)
            self._fused_key = key
        return self._fused_cache

    def apply_batch(self, embedding: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Probabilities (N, K + M) over :attr:`labels` for embeddings (N, D) and model probabilities (N, K)."""
        e = np.asarray(embedding, dtype=np.float32)
        old = np.asarray(probs, dtype=np.float32)
        w, b, pw, pb = self._fused()
        if pw is not None:
            own = _softmax(e @ pw.T + pb)
            a = self.personal_blend
            mixed = np.exp((1.0 - a) * np.log(np.maximum(old, 1e-7)) + a * np.log(np.maximum(own, 1e-7)))
            old = mixed / mixed.sum(axis=-1, keepdims=True)
        if not self.new_labels:
            return old.astype(np.float32, copy=False)
        k = len(self.base_labels)
        logits = e @ w.T + b
        r = _logsumexp(logits[:, k:]) - _logsumexp(logits[:, :k]) + self.gate_bias
        s = 1.0 / (1.0 + np.exp(-np.clip(r, -60.0, 60.0)))[:, None]
        return np.concatenate([(1.0 - s) * old, s * _softmax(logits[:, k:])], axis=1).astype(np.float32, copy=False)

    def apply(self, embedding: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, list[str], str]:
        """One window (or a batch): (probs over the extended labels, the labels, which head answered).

        The name is ``"model"`` when the model's own softmax, untouched, gave the winning label.
        """
        single = np.ndim(probs) == 1
        out = self.apply_batch(np.atleast_2d(embedding), np.atleast_2d(probs))
        winner = out.argmax(axis=1)
        touched = self.personal_weights is not None or bool(np.any(winner >= len(self.base_labels)))
        name = self.name if touched else MODEL_HEAD
        return (out[0] if single else out), self.labels, name

    # --- storage -------------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        out = {"mean": self.mean, "scale": self.scale, "weights": self.weights, "bias": self.bias}
        if self.personal_weights is not None:
            out["personal_weights"] = self.personal_weights
            out["personal_bias"] = self.personal_bias
        return out

    def describe(self) -> dict[str, Any]:
        """The manifest part (JSON) that goes with :meth:`arrays`."""
        return {"name": self.name, "base_labels": self.base_labels, "new_labels": self.new_labels,
                "gate_bias": float(self.gate_bias), "personal_blend": float(self.personal_blend),
                "personalized": self.personal_weights is not None, **self.meta}


def head_from_arrays(desc: dict[str, Any], arrays: Any) -> Head:
    """Rebuild a :class:`Head` from its manifest description and npz arrays."""
    meta = {k: v for k, v in desc.items() if k not in ("name", "base_labels", "new_labels", "gate_bias",
                                                       "personal_blend", "personalized")}
    personal = "personal_weights" in arrays
    return Head(name=str(desc["name"]), base_labels=list(desc["base_labels"]), new_labels=list(desc["new_labels"]),
                mean=np.asarray(arrays["mean"], np.float32), scale=np.asarray(arrays["scale"], np.float32),
                weights=np.asarray(arrays["weights"], np.float32), bias=np.asarray(arrays["bias"], np.float32),
                gate_bias=float(desc.get("gate_bias", 0.0)),
                personal_weights=np.asarray(arrays["personal_weights"], np.float32) if personal else None,
                personal_bias=np.asarray(arrays["personal_bias"], np.float32) if personal else None,
                personal_blend=float(desc.get("personal_blend", 0.0)), meta=meta)


def _check_shapes(head: Head) -> None:
    """ValueError unless the arrays fit together (a hand-edited npz would otherwise fail mid-stream)."""
    k, m = len(head.base_labels), len(head.new_labels)
    d = head.mean.shape[0] if head.mean.ndim == 1 else -1
    # A personalize-only head (no new labels) fits no gate regression: its weights are (0, D).
    rows = head.weights.shape[0] if head.weights.ndim == 2 else -1
    ok = (d > 0 and head.scale.shape == (d,) and head.weights.shape[1:] == (d,) and head.bias.shape == (rows,)
          and (rows == k + m or (m == 0 and rows == 0))
          and (head.personal_weights is None
               or (head.personal_weights.shape == (k, d) and getattr(head.personal_bias, "shape", None) == (k,))))
    if not ok:
        raise ValueError(f"arrays do not fit {k} + {m} labels (mean {head.mean.shape}, weights {head.weights.shape})")
    if any(not isinstance(x, str) or not x or safe_text(x, MAX_LABEL) != x for x in head.new_labels):
        raise ValueError("a new label is empty, too long or holds control characters")


def load_head(bundle: Bundle | str | os.PathLike[str]) -> Head | None:
    """The bundle's enrolled head, or None when nothing was enrolled; BundleError (one line) when it is
    missing, outside the bundle, truncated or otherwise corrupt."""
    if not isinstance(bundle, Bundle):
        bundle = Bundle.load(bundle)
    desc = bundle.manifest.get(HEAD_KEY)
    if not desc:
        return None
    path = bundle.file(desc.get("file"), "enrolled head file")
    if not path.is_file():
        raise BundleError(f"{bundle.path}: enrolled head file {desc.get('file')!r} is missing "
                          "(run 'hartool enroll --remove' for each label, or re-enroll)")
    bundle.entry_path(desc, "enrolled head file")  # size and sha256 as enroll recorded them
    try:
        with np.load(path, allow_pickle=False) as arrays:
            head = head_from_arrays(desc, {k: arrays[k] for k in arrays.files})
        _check_shapes(head)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path}: corrupt enrolled head ({exc})") from exc
    if head.base_labels != bundle.labels:
        raise BundleError(f"{path}: head was fitted for labels {head.base_labels}, the bundle has {bundle.labels}")
    return head
