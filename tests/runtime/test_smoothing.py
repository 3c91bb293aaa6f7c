"""Smoothers: each damps flicker on a synthetic sequence and switches after the expected number of windows."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hartool.core.metrics import label_changes
from hartool.runtime.smoothing import (
    HMMFilter,
    Hysteresis,
    ProbabilitySmoother,
    make_smoother,
    parse_method,
    smooth_sequence,
)


def onehotish(labels: list[int], n: int = 3, p: float = 0.9) -> np.ndarray:
    out = np.full((len(labels), n), (1 - p) / (n - 1), dtype=np.float32)
    out[np.arange(len(labels)), labels] = p
    return out


def flicker() -> tuple[np.ndarray, np.ndarray]:
    """30 windows of class 0 then 30 of class 1, with an isolated wrong window every 6 windows."""
    truth = np.array([0] * 30 + [1] * 30)
    noisy = truth.copy()
    noisy[3::6] = 2
    return truth, onehotish(noisy.tolist())


@pytest.mark.parametrize("method", ["mean:5", "vote:5", "hysteresis:margin=0.2,windows=2", "hmm:switch=0.01"])
def test_every_method_removes_isolated_flicker(method: str) -> None:
    truth, probs = flicker()
    raw = probs.argmax(1)
    smoothed = smooth_sequence(method, probs).argmax(1)
    assert label_changes(raw) == 21  # 10 isolated errors = 20 flips, plus the real change
    assert label_changes(smoothed) == 1
    # The one real change is kept, within a few windows.
    change = int(np.flatnonzero(smoothed[1:] != smoothed[:-1])[0]) + 1
    assert 30 <= change <= 33
    assert (smoothed[:30] == 0).all() and (smoothed[34:] == 1).all()


def test_outputs_are_probabilities() -> None:
    _, probs = flicker()
    for method in ("none", "mean:3", "vote:3", "hysteresis", "hmm"):
        out = smooth_sequence(method, probs)
        assert out.shape == probs.shape
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
        assert (out >= 0).all()


def test_hysteresis_switches_on_the_nth_window_of_a_run() -> None:
    h = Hysteresis(3, margin=0.3, windows=3)
    seq = [0, 0, 1, 1, 0, 1, 1, 1, 1]  # the run of 2 is broken; then 3 in a row switch on the 3rd
    shown = [int(h.update(onehotish([k])[0]).argmax()) for k in seq]
    assert shown == [0, 0, 0, 0, 0, 0, 0, 1, 1]
    # A challenger that leads by less than the margin never switches.
    h = Hysteresis(3, margin=0.3, windows=1)
    h.update(np.array([0.8, 0.1, 0.1]))
    assert all(int(h.update(np.array([0.35, 0.45, 0.2])).argmax()) == 0 for _ in range(10))


def test_hmm_switch_delay_follows_the_transition_cost() -> None:
    # Evidence per window for a switch: log(0.9 / 0.05) = 2.89; cost of leaving: log(0.99 / 0.005) = 5.29,
    # so the filter needs 2 confident windows (one is not enough) after a long stay in class 0.
    hmm = HMMFilter(3, switch=0.01, floor=0.0)
    for _ in range(20):
        hmm.update(onehotish([0])[0])
    first = hmm.update(onehotish([1])[0])
    second = hmm.update(onehotish([1])[0])
    assert int(first.argmax()) == 0 and int(second.argmax()) == 1
    # Stickier chain: more windows.
    hmm = HMMFilter(3, switch=0.0001, floor=0.0)
    for _ in range(20):
        hmm.update(onehotish([0])[0])
    shown = [int(hmm.update(onehotish([1])[0]).argmax()) for _ in range(6)]
    assert shown.index(1) == 3  # needs 4 windows: 4 x 2.89 > log(0.9999 / 0.00005) = 9.9


def test_reset_forgets() -> None:
    sm = make_smoother("hysteresis:windows=5", 3)
    sm.update(onehotish([0])[0])
    sm.reset()
    assert int(sm.update(onehotish([2])[0]).argmax()) == 2


def test_parse_method() -> None:
    assert parse_method("3") == ("mean", {"k": 3})
    assert parse_method(1) == ("none", {})
    assert parse_method("vote:7") == ("vote", {"k": 7})
    assert parse_method("hysteresis:margin=0.3,windows=2") == ("hysteresis", {"margin": 0.3, "windows": 2})
    assert isinstance(make_smoother("mean:4", 6), ProbabilitySmoother)
    with pytest.raises(ValueError, match="unknown smoothing method"):
        make_smoother("kalman", 6)
    with pytest.raises(ValueError, match="takes margin, windows"):
        make_smoother("hysteresis:k=3", 6)
    with pytest.raises(ValueError):
        make_smoother("hmm:switch=0", 6)


def test_vote_majority_and_tie_break() -> None:
    sm = make_smoother("vote:4", 3)
    outs = [sm.update(p) for p in onehotish([0, 1, 1, 0])]
    assert [int(o.argmax()) for o in outs[:3]] == [0, 0, 1]  # 1-1 tie at step 2: equal means -> first
    sm = make_smoother("vote:2", 3)
    sm.update(np.array([0.6, 0.3, 0.1]))
    assert int(sm.update(np.array([0.05, 0.9, 0.05])).argmax()) == 1  # tie broken by the mean probability


def _forward_backward(probs: np.ndarray, switch: float, floor: float, still: float | None = None,
                      held: np.ndarray | None = None) -> np.ndarray:
    """Reference: the full-sequence posterior, written as plain matrix products (no rescaling; short inputs).
    The step into window t uses ``still`` instead of ``switch`` where ``held[t]``."""
    n = probs.shape[1]

    def sticky(p: float) -> np.ndarray:
        return np.full((n, n), p / (n - 1)) + np.eye(n) * (1 - p - p / (n - 1))

    into = [sticky(still if held is not None and held[t] else switch) for t in range(len(probs))]
    e = np.maximum(probs.astype(np.float64), floor)
    alpha = [e[0]]
    for t in range(1, len(e)):
        alpha.append(e[t] * (alpha[-1] @ into[t]))
    beta = [np.ones(n)]
    for t in range(len(e) - 1, 0, -1):
        beta.insert(0, into[t] @ (e[t] * beta[0]))
    post = np.array(alpha) * np.array(beta)
    return post / post.sum(axis=1, keepdims=True)


def test_lagged_hmm_is_forward_backward_over_the_next_lag_windows() -> None:
    probs = np.random.default_rng(3).dirichlet(np.full(4, 0.4), size=12).astype(np.float32)
    # Lag >= length: every window sees the whole rest of the sequence.
    np.testing.assert_allclose(smooth_sequence("hmm:switch=0.1,floor=0.05,lag=11", probs),
                               _forward_backward(probs, 0.1, 0.05), atol=1e-6)
    # Lag 2: window t sees windows t+1 and t+2 (fewer at the end of the stream).
    want = np.array([_forward_backward(probs[: t + 3], 0.1, 0.05)[t] for t in range(12)])
    np.testing.assert_allclose(smooth_sequence("hmm:switch=0.1,floor=0.05,lag=2", probs), want, atol=1e-6)
    np.testing.assert_allclose(smooth_sequence("hmm:switch=0.1,floor=0.05,lag=0", probs),
                               smooth_sequence("hmm:switch=0.1,floor=0.05", probs), atol=0)


def test_lagged_hmm_owes_lag_windows_and_flushes_them() -> None:
    sm = make_smoother("hmm:switch=0.01,floor=0.1,lag=3", 3)
    assert sm.lag == 3
    outs = [sm.update(p) for p in onehotish([0] * 5)]
    assert outs[:3] == [None, None, None] and all(o is not None for o in outs[3:])
    assert len(sm.flush()) == 3  # windows 2, 3, 4
    assert sm.update(onehotish([1])[0]) is None  # flush started afresh: nothing carried over
    assert [int(o.argmax()) for o in sm.flush()] == [1]
    assert make_smoother("vote:3", 3).flush() == [] and make_smoother("mean:3", 3).lag == 0


def test_look_ahead_places_the_change_and_removes_the_flicker_the_causal_filter_keeps() -> None:
    truth = np.array([0] * 30 + [1] * 30)
    noisy = truth.copy()
    noisy[[5, 6, 40, 41]] = 2  # two-window errors: a causal HMM that is quick to follow a change shows them
    probs = onehotish(noisy.tolist())
    causal = smooth_sequence("hmm:switch=0.05,floor=0.1", probs).argmax(1)
    lagged = smooth_sequence("hmm:switch=0.05,floor=0.1,lag=3", probs).argmax(1)
    assert label_changes(causal) == 5
    assert label_changes(lagged) == 1 and (lagged == truth).all()


def test_lag_parameter_is_checked() -> None:
    for bad in ("hmm:lag=-1", "hmm:lag=2.5", "hmm:lag=51"):
        with pytest.raises(ValueError, match="lag"):
            make_smoother(bad, 6)
    with pytest.raises(ValueError, match="takes k"):
        make_smoother("mean:4,lag=2", 6)


@pytest.mark.parametrize("lag", [0, 2])
def test_hmm_keep_shows_sure_windows_as_they_are_and_smooths_the_unsure(lag: int) -> None:
    sure = lambda k: np.eye(3, dtype=np.float32)[k] * 0.97 + 0.01  # noqa: E731 - a row of probabilities
    unsure_1 = np.array([0.3, 0.55, 0.15], dtype=np.float32)
    # A sticky chain: three sure windows of class 1 between class-0 windows, then one unsure class-1 window.
    seq = np.stack([sure(0)] * 6 + [sure(1)] * 3 + [sure(0)] * 6 + [unsure_1] + [sure(0)] * 6)
    plain = smooth_sequence(f"hmm:switch=0.00001,floor=0.05,lag={lag}", seq).argmax(1)
    kept = smooth_sequence(f"hmm:switch=0.00001,floor=0.05,lag={lag},keep=0.95", seq).argmax(1)
    assert (plain[6:9] == 0).all()  # the sticky chain smooths the short run away ...
    assert (kept[6:9] == 1).all()  # ... keep shows the classifier's sure windows
    assert kept[15] == 0 and plain[15] == 0  # an unsure window is still smoothed
    assert (kept[:6] == 0).all() and (kept[-6:] == 0).all()
    with pytest.raises(ValueError, match="keep"):
        smooth_sequence("hmm:keep=1.5", seq)


def test_still_bout_hmm_uses_its_own_switch_inside_a_held_posture() -> None:
    probs = np.random.default_rng(5).dirichlet(np.full(4, 0.4), size=12).astype(np.float32)
    held = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1], dtype=bool)
    spec = "hmm:switch=0.05,floor=0.1,lag=2,still=0.4"
    want = np.array([_forward_backward(probs[: t + 3], 0.05, 0.1, 0.4, held)[t] for t in range(12)])
    np.testing.assert_allclose(smooth_sequence(spec, probs, held=held), want, atol=1e-6)
    # The held windows changed the answer, and without any held window it is the plain HMM.
    assert np.abs(smooth_sequence(spec, probs, held=held) - smooth_sequence(spec, probs)).max() > 1e-3
    np.testing.assert_allclose(smooth_sequence(spec, probs), smooth_sequence("hmm:switch=0.05,floor=0.1,lag=2",
                                                                            probs), atol=0)
    with pytest.raises(ValueError, match="held has"):
        smooth_sequence(spec, probs, held=held[:5])
    for bad in ("hmm:still=0", "hmm:still=1", "hmm:still=-0.2"):
        with pytest.raises(ValueError, match="still"):
            make_smoother(bad, 4)


def test_still_bout_hmm_lets_a_held_bout_keep_the_windows_it_gets_right() -> None:
    # A still bout the model calls standing (0) in 7 windows and sitting (1) in 5, interleaved: a sticky chain
    # shows the majority throughout; inside a held posture with a large `still` each window keeps its own label.
    seq = [0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1]
    probs = np.array([[0.7, 0.3, 0.0] if k == 0 else [0.3, 0.7, 0.0] for k in seq], dtype=np.float32)
    held = np.ones(len(seq), dtype=bool)
    held[0] = False
    plain = smooth_sequence("hmm:switch=0.05,floor=0.2,lag=2", probs, held=held).argmax(axis=1)
    bout = smooth_sequence("hmm:switch=0.05,floor=0.2,lag=2,still=0.45", probs, held=held).argmax(axis=1)
    assert plain.tolist() == [0] * len(seq)
    assert bout.tolist() == seq


def _path_marginals(probs: np.ndarray, switch: float, floor: float, still: float, held: np.ndarray,
                    dwell: int) -> np.ndarray:
    """Reference for ``dwell``: every label path of a short sequence, weighted as the definition says.

    The first activity may have begun before the stream (it can end at once); any later one lasts at least
    ``dwell`` windows before it can end (the last may be cut short by the stream's end). Staying in an
    activity that has lasted ``dwell`` windows costs ``1 - p``, leaving it ``p / (n - 1)``, where ``p`` is
    ``still`` for the step into a held window and ``switch`` otherwise; staying in a younger one costs nothing.
    """
    n = probs.shape[1]
    e = np.maximum(probs.astype(np.float64), floor)
    post = np.zeros_like(e)
    for path in itertools.product(range(n), repeat=len(probs)):
        w, run = e[0, path[0]], dwell  # the first activity is already old enough to end
        for t in range(1, len(path)):
            p = still if held[t] else switch
            if path[t] != path[t - 1]:
                w, run = (w * p / (n - 1), 1) if run >= dwell else (0.0, 1)
            else:
                w, run = (w * (1 - p) if run >= dwell else w), run + 1
            w *= e[t, path[t]]
        post[np.arange(len(path)), path] += w
    return post / post.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("dwell", [1, 2, 3])
def test_dwell_hmm_is_the_posterior_over_paths_whose_activities_last_dwell_windows(dwell: int) -> None:
    probs = np.random.default_rng(7).dirichlet(np.full(3, 0.4), size=7).astype(np.float32)
    held = np.array([0, 0, 1, 1, 0, 1, 0], dtype=bool)
    spec = f"hmm:switch=0.2,floor=0.05,still=0.4,dwell={dwell}"
    # lag 6 >= the rest of the sequence: every window's output is its full-sequence posterior.
    got = smooth_sequence(spec + ",lag=6", probs, held=held)
    np.testing.assert_allclose(got, _path_marginals(probs, 0.2, 0.05, 0.4, held, dwell), atol=1e-6)
    # The causal filter (lag 0) is the same posterior over the windows up to each one.
    causal = smooth_sequence(spec, probs, held=held)
    want = [_path_marginals(probs[: t + 1], 0.2, 0.05, 0.4, held, dwell)[t] for t in range(len(probs))]
    np.testing.assert_allclose(causal, np.array(want), atol=1e-6)


def test_dwell_removes_a_lone_window_the_plain_chain_keeps_and_is_checked() -> None:
    # A held still bout the model calls 0 but for one window. With a large `still` each window of the bout
    # speaks for itself, so the plain chain shows the lone window; with dwell 2 no path holds an activity for
    # one window only, and the lone window is smoothed away.
    seq = [0] * 8 + [1] + [0] * 8
    probs = onehotish(seq, p=0.8)
    held = np.ones(len(seq), dtype=bool)
    plain = smooth_sequence("hmm:switch=0.05,floor=0.05,lag=2,still=0.45", probs, held=held).argmax(1)
    dwell = smooth_sequence("hmm:switch=0.05,floor=0.05,lag=2,still=0.45,dwell=2", probs, held=held).argmax(1)
    assert plain.tolist() == seq
    assert dwell.tolist() == [0] * len(seq)
    for bad in ("hmm:dwell=0", "hmm:dwell=1.5", "hmm:dwell=21"):
        with pytest.raises(ValueError, match="dwell"):
            make_smoother(bad, 3)
    with pytest.raises(ValueError, match="dwell and transitions"):
        make_smoother("hmm:dwell=2", 2, transitions=[[0.9, 0.1], [0.1, 0.9]])
