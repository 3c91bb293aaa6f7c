"""Temporal smoothing of class probabilities, so a live label stream does not flicker.

Every smoother is online: ``update(probs, held)`` takes one window's class probabilities (and whether the window
holds the posture of the one before it: ``hartool.core.orientation.StillBouts``) and returns a
probability-like vector whose argmax is the label to show. A smoother with ``lag = L > 0`` (only
``hmm:...,lag=L``) looks L windows ahead: its ``update`` returns the output for the window L windows back
(None while the first L arrive), and ``flush()`` returns the outputs still owed, oldest first, at the end of
a stream or before a gap. ``reset()`` forgets the past (after a gap or a reconnect). Methods
(``make_smoother(method, n_labels, **params)``):

- ``none``: pass-through.
- ``mean:K``: mean of the last K probability vectors (:class:`ProbabilitySmoother`).
- ``vote:K``: majority vote of the last K window labels (ties: the higher mean probability).
- ``hysteresis``: keep the shown label until another one beats it by ``margin`` for ``windows``
  consecutive windows.
- ``hmm``: forward filtering of a hidden-Markov chain over the activities with a sticky transition matrix
  (``switch`` = probability of leaving an activity between two windows); the classifier's probabilities,
  floored at ``floor``, are the emission likelihoods. With ``lag=L`` a window's state is estimated from the
  L windows after it too (fixed-lag forward-backward smoothing): the label is shown L windows (L x the
  stride) later, and a lone wrong window or a real change is judged with the evidence that follows it.
  With ``keep=K`` the smoother is confidence-aware: a window whose own top probability is at least K shows
  its own label (the chain still learns from it); only windows the classifier was unsure of are relabelled,
  which bounds what smoothing can cost a person whose activities change often. With ``still=P`` the chain
  leaves an activity with probability P (instead of ``switch``) between two windows of one held posture
  (``held``): a large P lets each window of a still bout speak for itself, so a person whose sitting the
  model half takes for standing keeps the windows it gets right instead of losing them to the bout's majority.
  With ``dwell=D`` an activity, once entered, lasts at least D windows (the chain runs over (activity, age)
  states): a lone window unlike its neighbours is less likely to become two label changes, so the chain may be
  stickier elsewhere at the same cost in accuracy. Each window still shows its own most likely activity, not
  one path's, so with a short look-ahead a shorter run can still be shown.

A method string may carry its parameters: ``mean:5``, ``vote:7``, ``hysteresis:margin=0.3,windows=3``,
``hmm:switch=0.01,floor=0.02,lag=3,keep=0.97,still=0.3,dwell=2``; keyword arguments override them. A bare integer ``K`` means ``mean:K``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

METHODS = ("none", "mean", "vote", "hysteresis", "hmm")
# The default of `hartool stream` and the demo. Chosen (benchmarks/oof_smoothing.py, fifth run) on 63 out-of-fold
# streams: the 21 non-test HAPT people, each scored by fold models of the seed-0, 1 and 2 recipe that never
# trained on them. Rule: of the settings whose change rate stays <= 1.5x the truth's in 90 % of nine-person
# groups, the one whose worst person loses least against no smoothing. Every earlier choice (mean:4, sticky HMMs,
# a still-bout HMM, a minimum activity length at lag 2) and why it was replaced is in benchmarks/RESULTS.md. This
# one looks 3 windows ahead (a label is shown 3.8 s after its window ends at the HAPT stride): at lag 2 most
# windows it lost lay within 3 windows of a real change (a new activity's first window shown as the old one),
# since a change needs more evidence than three windows' floored emissions give. An activity, once entered, is
# assumed to last 6 windows (7.7 s), yet each window shows its own most likely activity: a 4-window bout the
# classifier is sure of shows in part, one of 3 windows or fewer not at all (as at lag 2).
DEFAULT_SMOOTHING = "hmm:switch=0.1,floor=0.3,lag=3,still=0.3,dwell=6"
# The previous default: labels with no delay (causal), for a user who wants them at once.
CAUSAL_SMOOTHING = "hmm:switch=0.05,floor=0.1"


MAX_LAG = 50  # windows; more is no longer a live stream
MAX_DWELL = 20  # windows; a minimum activity length beyond ~25 s would hide real short activities


def sticky_transitions(n_classes: int, switch: float) -> np.ndarray:
    """The transition matrix that stays with probability 1 - switch and moves to each other class evenly."""
    off = switch / max(n_classes - 1, 1)
    return np.full((n_classes, n_classes), off) + np.eye(n_classes) * (1.0 - switch - off)


def dwell_transitions(n_classes: int, switch: float, dwell: int) -> np.ndarray:
    """``sticky_transitions`` over (class, age) states, so a class once entered lasts at least ``dwell`` windows.

    State ``c * dwell + a`` is class ``c`` entered ``a`` windows ago (``a`` stops at ``dwell - 1``). A younger
    state can only age; only the oldest leaves, with probability ``switch``, into the youngest state of another
    class. ``dwell=1`` is ``sticky_transitions``.
    """
    sticky = sticky_transitions(n_classes, switch)
    if dwell == 1:
        return sticky
    out = np.zeros((n_classes * dwell, n_classes * dwell))
    for c in range(n_classes):
        for a in range(dwell - 1):
            out[c * dwell + a, c * dwell + a + 1] = 1.0
        out[c * dwell + dwell - 1, np.arange(n_classes) * dwell] = sticky[c]  # leave: into a new class's youngest
        out[c * dwell + dwell - 1, c * dwell] = 0.0
        out[c * dwell + dwell - 1, c * dwell + dwell - 1] = sticky[c, c]  # stay: the oldest state keeps its age
    return out


class Smoother(Protocol):
    """What the stream needs from a smoother."""

    lag: int
    needs_held: bool  # whether ``held`` changes anything (the caller may skip finding out)

    def update(self, probs: np.ndarray, held: bool = False) -> np.ndarray | None: ...

    def flush(self) -> list[np.ndarray]:
        """The outputs still owed, oldest first; the smoother then starts afresh (as after ``reset``)."""
        ...

    def reset(self) -> None: ...


class _Causal:
    """A smoother without look-ahead: every ``update`` answers for its own window, nothing is owed."""

    lag = 0
    needs_held = False

    def reset(self) -> None:
        pass

    def flush(self) -> list[np.ndarray]:
        self.reset()
        return []


class PassThrough(_Causal):
    """No smoothing: every window's own probabilities."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes

    def update(self, probs: np.ndarray, held: bool = False) -> np.ndarray:
        return np.asarray(probs, dtype=np.float32)


class ProbabilitySmoother(_Causal):
    """Mean of the last ``k`` probability vectors (k=1 is a pass-through); damps single-window flicker."""

    def __init__(self, k: int, n_classes: int) -> None:
        if k < 1:
            raise ValueError("smoothing window must be >= 1")
        self.k = k
        self._hist = np.zeros((k, n_classes), dtype=np.float32)
        self._count = 0

    def update(self, probs: np.ndarray, held: bool = False) -> np.ndarray:
        self._hist[self._count % self.k] = probs
        self._count += 1
        return self._hist[: min(self._count, self.k)].mean(axis=0)

    def reset(self) -> None:
        self._count = 0


class MajorityVote(_Causal):
    """Fraction of the last ``k`` windows voting for each label; ties go to the higher mean probability."""

    def __init__(self, k: int, n_classes: int) -> None:
        if k < 1:
            raise ValueError("vote window must be >= 1")
        self.k = k
        self.n_classes = n_classes
        self._mean = ProbabilitySmoother(k, n_classes)
        self._votes = np.zeros(k, dtype=np.int64)
        self._count = 0

    def update(self, probs: np.ndarray, held: bool = False) -> np.ndarray:
        mean = self._mean.update(probs)
        self._votes[self._count % self.k] = int(np.argmax(probs))
        self._count += 1
        n = min(self._count, self.k)
        frac = np.bincount(self._votes[:n], minlength=self.n_classes).astype(np.float32) / n
        # The tie-break nudge is far below one vote (1/k), so it never overturns a majority.
        out = frac + 1e-4 * mean / max(self.k, 1)
        return (out / out.sum()).astype(np.float32)

    def reset(self) -> None:
        self._mean.reset()
        self._count = 0


def _hold(probs: np.ndarray, held: int) -> np.ndarray:
    """Probabilities mixed half-and-half with a one-hot of ``held``: still sums to 1, argmax is ``held``."""
    out = 0.5 * np.asarray(probs, dtype=np.float32)
    out[held] += 0.5 + 1e-6
    return out / out.sum()


class Hysteresis(_Causal):
    """Keep the shown label until another beats it by ``margin`` (probability) for ``windows`` windows in a row.

    With ``windows=N`` the label switches on the N-th consecutive window in which the same challenger leads
    the shown label by at least ``margin``; a window that breaks the run starts the count again.
    """

    def __init__(self, n_classes: int, margin: float = 0.2, windows: int = 2) -> None:
        if not 0.0 <= margin < 1.0:
            raise ValueError("hysteresis margin must be in [0, 1)")
        if windows < 1:
            raise ValueError("hysteresis windows must be >= 1")
        self.n_classes, self.margin, self.windows = n_classes, float(margin), int(windows)
        self.reset()

    def reset(self) -> None:
        self._held: int | None = None
        self._challenger: int | None = None
        self._run = 0

    def update(self, probs: np.ndarray, held: bool = False) -> np.ndarray:
        p = np.asarray(probs, dtype=np.float32)
        top = int(np.argmax(p))
        if self._held is None:
            self._held = top  # the first window shows its own label
        elif top != self._held and p[top] - p[self._held] >= self.margin:
            self._run = self._run + 1 if top == self._challenger else 1
            self._challenger = top
            if self._run >= self.windows:
                self._held, self._challenger, self._run = top, None, 0
        else:
            self._challenger, self._run = None, 0
        return _hold(p, self._held)


class HMMFilter:
    """Forward filtering (``lag=0``, causal) or fixed-lag smoothing over activities with a sticky transition matrix.

    ``alpha_t ∝ emission_t * (T^T alpha_{t-1})`` with ``T = (1 - switch) I + switch / (n - 1)`` off the
    diagonal. The emission is the classifier's probability vector floored at ``floor`` (divided by the
    class ``prior`` when given), so a single over-confident window cannot flip the state alone: leaving an
    activity costs ``log((1 - switch) / switch)`` of accumulated evidence. With ``lag=L`` the output for
    window ``t`` is ``alpha_t * beta_t`` with the backward message ``beta_t`` over windows ``t+1..t+L``, so
    it is returned when window ``t+L`` arrives (or by :meth:`flush`, from the windows there are). With
    ``still``, the transition into a window that holds the previous one's posture (``update(..., held=True)``)
    uses ``switch = still`` instead. With ``dwell=D`` the states are (activity, age) pairs
    (:func:`dwell_transitions`) and the outputs sum each activity's ages.
    """

    def __init__(self, n_classes: int, switch: float = 0.01, floor: float = 0.02,
                 prior: np.ndarray | list[float] | None = None,
                 transitions: np.ndarray | list[list[float]] | None = None, lag: int = 0,
                 keep: float | None = None, still: float | None = None, dwell: int = 1) -> None:
        if not 0.0 < switch < 1.0:
            raise ValueError("hmm switch probability must be in (0, 1)")
        if not 0.0 <= floor < 1.0:
            raise ValueError("hmm floor must be in [0, 1)")
        if int(lag) != lag or not 0 <= lag <= MAX_LAG:
            raise ValueError(f"hmm lag must be a whole number of windows in 0..{MAX_LAG}")
        if keep is not None and not 0.0 < keep <= 1.0:
            raise ValueError("hmm keep must be a probability in (0, 1]")
        if still is not None and not 0.0 < still < 1.0:
            raise ValueError("hmm still probability must be in (0, 1)")
        if still is not None and transitions is not None:
            raise ValueError("hmm still and transitions do not combine")
        if int(dwell) != dwell or not 1 <= dwell <= MAX_DWELL:
            raise ValueError(f"hmm dwell must be a whole number of windows in 1..{MAX_DWELL}")
        if dwell > 1 and transitions is not None:
            raise ValueError("hmm dwell and transitions do not combine")
        self.n_classes, self.switch, self.floor, self.lag = n_classes, float(switch), float(floor), int(lag)
        self.dwell = int(dwell)
        self.keep = None if keep is None else float(keep)
        self.needs_held = still is not None
        if transitions is not None:
            trans = np.asarray(transitions, dtype=np.float64)
            if trans.shape != (n_classes, n_classes) or (trans < 0).any():
                raise ValueError(f"hmm transitions must be a non-negative {n_classes}x{n_classes} matrix")
            self._trans = trans / trans.sum(axis=1, keepdims=True)
        else:
            self._trans = dwell_transitions(n_classes, self.switch, self.dwell)
        self._held_trans = self._trans if still is None else dwell_transitions(n_classes, float(still), self.dwell)
        # The chain may start in the middle of an activity: at the oldest age of every class.
        self._start = np.zeros(n_classes * self.dwell)
        self._start[self.dwell - 1::self.dwell] = 1.0
        self._prior = None if prior is None else np.maximum(np.asarray(prior, dtype=np.float64), 1e-6)
        self.reset()

    def reset(self) -> None:
        self._alpha: np.ndarray | None = None
        # (forward message, T @ diag(emission), own probabilities) of the windows whose output is still owed,
        # oldest first: the backward message over windows s+1..s+L is the product of their matrices on ones.
        self._owed: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def update(self, probs: np.ndarray, held: bool = False) -> np.ndarray | None:
        own = np.asarray(probs, dtype=np.float32)
        e = np.maximum(np.asarray(probs, dtype=np.float64), self.floor)
        if self._prior is not None:
            e = e / self._prior
        e = np.repeat(e, self.dwell)  # every age of a class emits as the class does
        trans = self._held_trans if held else self._trans  # the step into this window
        alpha = e * self._start if self._alpha is None else e * (self._alpha @ trans)
        total = alpha.sum()
        # Renormalise every step (no underflow); a zero total cannot happen with floor > 0, but be safe.
        self._alpha = alpha / total if total > 0 else self._start / self._start.sum()
        if self.lag == 0:
            return self._kept(own, self._classes(self._alpha))
        self._owed.append((self._alpha, trans * e, own))
        if len(self._owed) <= self.lag:
            return None
        oldest, _m, own = self._owed.pop(0)
        return self._kept(own, self._posterior(0, oldest))

    def _kept(self, own: np.ndarray, smoothed: np.ndarray) -> np.ndarray:
        """The window's own probabilities when it was sure enough (``keep``), else the smoothed ones."""
        return own if self.keep is not None and float(own.max()) >= self.keep else smoothed

    def _classes(self, states: np.ndarray) -> np.ndarray:
        """Per-class probabilities from the (class, age) states."""
        return states.reshape(self.n_classes, self.dwell).sum(axis=1).astype(np.float32)

    def _posterior(self, start: int, alpha: np.ndarray) -> np.ndarray:
        """``alpha`` times the backward message over the owed windows from ``start`` on, normalised, per class."""
        beta = np.ones(len(alpha))
        # Few numpy calls per step (this runs for every window of a live stream); the scale is reset every
        # few steps only, which float64 allows even for long lags and extreme switch or floor values.
        for i, (_a, m, _own) in enumerate(reversed(self._owed[start:])):
            beta = m @ beta
            if i % 4 == 3:
                beta /= beta.sum()
        post = alpha * beta
        total = post.sum()
        return self._classes(post / total if total > 0 else alpha)

    def flush(self) -> list[np.ndarray]:
        out = [self._kept(own, self._posterior(i + 1, alpha)) for i, (alpha, _m, own) in enumerate(self._owed)]
        self.reset()
        return out


def parse_method(method: str | int) -> tuple[str, dict[str, Any]]:
    """``"hysteresis:margin=0.3,windows=3"`` -> ``("hysteresis", {"margin": 0.3, "windows": 3})``.

    ``"mean:5"``/``"vote:5"`` give ``{"k": 5}``; a bare integer (the old ``--smooth K``) means ``mean:K``
    and ``1`` means ``none``.
    """
    text = str(method).strip().lower()
    if text.isdigit():
        return ("none", {}) if int(text) <= 1 else ("mean", {"k": int(text)})
    name, _, rest = text.partition(":")
    if name not in METHODS:
        raise ValueError(f"unknown smoothing method {name!r}; choose from {', '.join(METHODS)}")
    params: dict[str, Any] = {}
    for part in (p.strip() for p in rest.split(",") if p.strip()):
        key, eq, value = part.partition("=")
        if not eq:
            key, value = "k", key  # positional: the window count of mean/vote
        try:
            params[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError as exc:
            raise ValueError(f"smoothing parameter {part!r} is not a number") from exc
    return name, params


def make_smoother(method: str | int, n_labels: int, **params: Any) -> Smoother:
    """A fresh smoother for ``n_labels`` classes; raises ValueError on an unknown method or bad parameter."""
    name, parsed = parse_method(method)
    parsed.update(params)
    allowed = {"none": set(), "mean": {"k"}, "vote": {"k"}, "hysteresis": {"margin", "windows"},
               "hmm": {"switch", "floor", "prior", "transitions", "lag", "keep", "still", "dwell"}}[name]
    unknown = set(parsed) - allowed
    if unknown:
        raise ValueError(f"smoothing {name!r} takes {', '.join(sorted(allowed)) or 'no parameters'}, "
                         f"not {', '.join(sorted(unknown))}")
    if name == "none":
        return PassThrough(n_labels)
    if name in ("mean", "vote"):
        k = int(parsed.get("k", 5))
        return ProbabilitySmoother(k, n_labels) if name == "mean" else MajorityVote(k, n_labels)
    if name == "hysteresis":
        return Hysteresis(n_labels, **parsed)
    return HMMFilter(n_labels, **parsed)


def smooth_sequence(method: str | int, probs: np.ndarray, held: np.ndarray | None = None, **params: Any) -> np.ndarray:
    """Run a fresh smoother over a (T, n) probability sequence; returns the (T, n) smoothed outputs, row i
    for window i (a look-ahead smoother's owed windows are flushed at the end). ``held``: (T,) bools, window i
    holds the posture of window i - 1 (``StillBouts``); none held when omitted."""
    probs = np.asarray(probs, dtype=np.float32)
    flags = np.zeros(len(probs), dtype=bool) if held is None else np.asarray(held, dtype=bool)
    if flags.shape != (len(probs),):
        raise ValueError(f"held has {flags.shape} flags for {len(probs)} windows")
    sm = make_smoother(method, probs.shape[1], **params)
    rows = [r for r in (sm.update(p, bool(h)) for p, h in zip(probs, flags, strict=True)) if r is not None]
    rows += sm.flush()
    return np.asarray(rows, dtype=np.float32).reshape(probs.shape)
